/* shard/rankidx.c — order-statistic B+tree: exact rank of a key in O(log n).
 *
 * Why a B+tree with counts and not Redis's skiplist with spans: a skiplist node costs its key
 * plus about 1.33 forward pointers and spans plus a malloc header, near 80 bytes an entry,
 * and every step of a search is a cache miss in a different node. Here a leaf holds up to
 * RANKIDX__LEAF_CAP keys as structure-of-arrays (a[], b[], t[], pid[]: 28 bytes a key), and
 * the inner levels (one separator key, one child pointer and one subtree count per child)
 * cost well under a byte per entry. Rank is the sum of the counts of the children left of
 * the search path plus the position in the leaf. At millions of keys nearly every node a
 * search reaches is cold, so a search inside a node is built to wait for memory twice, not
 * once per probe (rankidx__group), and nodes can come from a pool of 2 MiB chunks that the
 * kernel may back with huge pages (struct rankidx_pool), so fewer of those misses also pay
 * for a page walk.
 *
 * Fill: a plain B+tree under random inserts settles near ln 2 = 69% full. Before splitting a
 * full leaf we first move keys into a sibling under the same parent that has room (the B*
 * idea), which keeps leaves about 85% full; rankidx_load packs leaves full.
 *
 * Invariants (verified by rankidx_check):
 * - root is NULL iff the index is empty; all leaves are at depth `height`;
 * - keys ascend strictly within a leaf and along the next/prev leaf chain;
 * - every node's header (hint[], and gsum[] in inner nodes) matches its slots, and a leaf's
 *   parent holds in lh[] a copy of each leaf child's hints, as byte-sized distances from the
 *   leaf's minimum (struct rankidx__lh), so a rank waits for the leaf once, not twice;
 * - inner slot i holds the exact minimum key of child i (so a separator never names a pid
 *   the index no longer holds: the name resolver's contract) and cnt[i], the number of keys
 *   under child i;
 * - non-root leaves hold at least RANKIDX__LEAF_MIN keys, non-root inner nodes at least
 *   RANKIDX__INNER_MIN children, an inner root at least 2.
 *
 * Delete never allocates (merges and borrows only free or move), so undoing an insert cannot
 * fail. Insert allocates every node it may need before changing anything, so on LR_ENOMEM
 * the index is unchanged. */
#include "rankidx.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../lib/err.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
/* Pool memory comes from mmap, which ASan does not track: poison what is not handed out, so
 * a use after a node went back to the pool still fails loudly. */
#define RANKIDX__POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define RANKIDX__UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define RANKIDX__POISON(p, n) ((void)(p), (void)(n))
#define RANKIDX__UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Why 256 and not 128: a rank at tens of millions of keys misses the cache at the leaf no
 * matter what, and the level above it (one slot per leaf) is the last one that can stay in a
 * core's L2. Twice the keys a leaf halves that level: at 10 M keys the lines a rank reads there
 * come to ~1.9 MB instead of ~3.9 MB. The price is in writes: an insert or delete moves twice
 * the bytes inside its leaf (rank_upsert_ops ~15% lower). */
#define RANKIDX__LEAF_CAP 256
#define RANKIDX__LEAF_MIN (RANKIDX__LEAF_CAP / 4)
/* Merge two leaves only when the result keeps a quarter free, so a delete-insert cycle at a
 * boundary does not merge and split the same pair over and over. */
#define RANKIDX__LEAF_MERGE (RANKIDX__LEAF_CAP * 3 / 4)
#define RANKIDX__INNER_CAP 64
#define RANKIDX__INNER_MIN (RANKIDX__INNER_CAP / 4)
#define RANKIDX__INNER_MERGE (RANKIDX__INNER_CAP * 3 / 4)
/* With at least 16 children per inner node and 32 keys per leaf, 16 levels exceed 2^64. */
#define RANKIDX__MAX_HEIGHT 16

/* Nodes are cache-line aligned and a[], cnt[] and child[] start on lines of their own, so
 * that the slots of a "group" fill one line of each in an inner node (8 slots) and one pair
 * of lines of a[], b[] and t[] in a leaf (16 slots; 128 bytes is what the hardware fetches
 * together anyway). A search of a cold node is built to wait for memory twice
 * (rankidx__group): first for the header, whose hint[j] copies the first key of group j+1
 * (INT64_MAX past the last slot) and so names the one group that can hold the answer, then
 * for that group's lines of a[] and, in an inner node, of cnt[] and child[], which load
 * together. gsum[j] (inner nodes) is the sum of group j's counts, so the keys left of a child
 * come from the header and that one cnt[] line. b[], t[] and pid[] are read only on ties. */
#define RANKIDX__LINE 64
#define RANKIDX__GROUP 8 /* inner slots a group: int64 slots a line */
#define RANKIDX__INNER_GROUPS (RANKIDX__INNER_CAP / RANKIDX__GROUP)
#define RANKIDX__LEAF_GROUPS 16 /* the header's 15 hints fill it to 2 lines */
#define RANKIDX__LGROUP (RANKIDX__LEAF_CAP / RANKIDX__LEAF_GROUPS) /* leaf slots a group */

struct rankidx__leaf {
    _Alignas(RANKIDX__LINE) uint32_t n;
    int64_t hint[RANKIDX__LEAF_GROUPS - 1]; /* hint[j] = a[16j+16]; the header: 2 lines */
    _Alignas(RANKIDX__LINE) int64_t a[RANKIDX__LEAF_CAP];
    int64_t b[RANKIDX__LEAF_CAP];
    int64_t t[RANKIDX__LEAF_CAP];
    uint32_t pid[RANKIDX__LEAF_CAP];
    struct rankidx__leaf *next; /* read by iterators only */
    struct rankidx__leaf *prev;
};

/* A leaf's hints as seen from its parent, so that a rank, having routed to child i, knows
 * which line of the leaf holds the answer without reading the leaf's header: the leaf then
 * costs one wait for memory, not two. d[j] is (a[16j+16] - a[0]) >> shift, where shift is the
 * least that brings the leaf's whole span (a[n-1] - a[0]) to at most RANKIDX__LH_PAST - 1, and
 * RANKIDX__LH_PAST past the last slot. A byte only bounds a hint: for a probe x, a[16j+16] < x
 * when d[j] < x >> shift and a[16j+16] > x when d[j] > x >> shift, so the answer lies in the
 * groups between the hints below and the hints above (nearly always one group, two when a hint
 * falls in the probe's bucket), and all of a[]'s lines in that range are read at once.
 *
 * Why bytes: a search into a leaf parent loads the hints of all 8 children of the routed group
 * alongside the group's keys, and at tens of millions of keys those blocks (one per leaf) are
 * what keeps the leaf parents' working set inside the last-level cache or not. At 16 bytes a
 * child, a group's hints are 2 lines (they were 8 at 32 bits a hint) and a leaf parent's lines
 * that searches touch come to about 60 bytes a leaf. */
#define RANKIDX__LH_PAST 255
struct rankidx__lh {
    uint8_t shift;
    uint8_t d[RANKIDX__LEAF_GROUPS - 1];
};

struct rankidx__inner {
    _Alignas(RANKIDX__LINE) uint32_t n;
    int64_t hint[RANKIDX__INNER_GROUPS - 1]; /* hint[j] = a[8j+8] */
    uint64_t gsum[RANKIDX__INNER_GROUPS];    /* keys under children 8j..8j+7; 0 past the end */
    _Alignas(RANKIDX__LINE) int64_t a[RANKIDX__INNER_CAP]; /* slot i: minimum key under child i */
    uint64_t cnt[RANKIDX__INNER_CAP];                      /* keys under child i */
    void *child[RANKIDX__INNER_CAP];
    int64_t b[RANKIDX__INNER_CAP];
    int64_t t[RANKIDX__INNER_CAP];
    uint32_t pid[RANKIDX__INNER_CAP];
    /* Only in a leaf's parent (height 1): lh[i] describes leaf child i. The 8 of a group share
     * one 128-byte block (the pair of lines the hardware fetches together). */
    _Alignas(2 * RANKIDX__LINE) struct rankidx__lh lh[RANKIDX__INNER_CAP];
};

_Static_assert(offsetof(struct rankidx__leaf, a) == 2 * RANKIDX__LINE, "leaf header: 2 lines");
_Static_assert(offsetof(struct rankidx__inner, a) == 2 * RANKIDX__LINE, "inner header: 2 lines");
_Static_assert(offsetof(struct rankidx__inner, cnt) % RANKIDX__LINE == 0, "cnt[] line-aligned");
_Static_assert(offsetof(struct rankidx__inner, child) % RANKIDX__LINE == 0, "child[] aligned");
_Static_assert(sizeof(struct rankidx__lh) * RANKIDX__GROUP == 2 * RANKIDX__LINE,
               "a group's leaf hints fill one pair of lines");
_Static_assert(RANKIDX__LGROUP * sizeof(int64_t) == 2 * RANKIDX__LINE &&
                   RANKIDX__LGROUP * sizeof(uint32_t) == RANKIDX__LINE,
               "a leaf group: a pair of lines of a[], b[], t[], one line of pid[]");
_Static_assert(offsetof(struct rankidx__leaf, a) % (2 * RANKIDX__LINE) == 0 &&
                   offsetof(struct rankidx__leaf, b) % (2 * RANKIDX__LINE) == 0 &&
                   offsetof(struct rankidx__leaf, t) % (2 * RANKIDX__LINE) == 0,
               "leaf groups start on a pair of lines");

/* Nodes of many indexes carved from 2 MiB chunks that the kernel may back with one huge page
 * each (MADV_HUGEPAGE): at tens of millions of keys the index outgrows what 4 KiB TLB entries
 * cover, and every cold node would otherwise cost a page walk before its cache miss. Freed
 * nodes go on a free list per node size; chunks go back only with the pool. */
#define RANKIDX__CHUNK ((size_t)2 << 20)

/* Nodes of one size. Leaves and inner nodes take separate chunks, so that the inner levels,
 * which every search crosses, sit in a few pages of their own instead of being spread over
 * all the leaves' pages. */
struct rankidx__class {
    char *bump; /* unused tail of this class's newest chunk */
    char *end;
    void *free; /* free nodes, linked through their first word */
};

struct rankidx_pool {
    char **chunk; /* every chunk mapped, for rankidx_pool_free */
    size_t nchunk;
    size_t cap;
    struct rankidx__class leaf;
    struct rankidx__class inner;
    size_t live; /* nodes handed out and not returned */
};

struct rankidx {
    struct rankidx_names names;
    struct rankidx_pool *pool; /* NULL: nodes come from malloc */
    void *root;                /* a leaf when height == 0; NULL when empty */
    uint32_t height;           /* inner levels above the leaves */
    uint64_t count;
    size_t nleaf;
    size_t ninner;
};

/* A stored key, for moving keys between nodes. */
struct rankidx__k {
    int64_t a;
    int64_t b;
    int64_t t;
    uint32_t pid;
};

/* The inner nodes from the root down to the leaf's parent and the child taken at each. */
struct rankidx__path {
    struct rankidx__inner *node[RANKIDX__MAX_HEIGHT];
    uint32_t idx[RANKIDX__MAX_HEIGHT];
};

/* ---- comparison ---- */

static const char *rankidx__id(const struct rankidx *idx, const struct rankkey *key, size_t *len)
{
    if (key->pid == RANKKEY_FOREIGN) {
        *len = key->id != NULL ? key->idlen : 0;
        return key->id;
    }
    *len = 0;
    if (idx->names.id == NULL) {
        return NULL;
    }
    return idx->names.id(idx->names.ctx, key->pid, len);
}

/* Keys already tie on a, b and t and their pids differ: the id strings decide. Kept out of
 * line because the fast path almost never gets here. */
static __attribute__((noinline)) int rankidx__cmp_tie(const struct rankidx *idx,
                                                      const struct rankkey *x,
                                                      const struct rankkey *y)
{
    size_t xlen;
    size_t ylen;
    const char *xid = rankidx__id(idx, x, &xlen);
    const char *yid = rankidx__id(idx, y, &ylen);
    int c = rankkey_cmp_id(xid, xlen, yid, ylen);
    if (c != 0 || x->pid == RANKKEY_FOREIGN || y->pid == RANKKEY_FOREIGN) {
        return c;
    }
    /* Two region players with one id: the resolver is broken, but the order must stay total
     * and the same in every replica, so fall back to the player number. */
    return x->pid < y->pid ? -1 : 1;
}

/* Compare probe @k with the stored key (@a, @b, @t, @pid). */
static inline int rankidx__cmp_slot(const struct rankidx *idx, const struct rankkey *k, int64_t a,
                                    int64_t b, int64_t t, uint32_t pid)
{
    int c = rankkey_cmp3(k->a, k->b, k->t, a, b, t);
    if (c != 0) {
        return c;
    }
    if (k->pid == pid) {
        return 0;
    }
    struct rankkey y = {.a = a, .b = b, .t = t, .pid = pid, .idlen = 0, .id = NULL};
    return rankidx__cmp_tie(idx, k, &y);
}

int rankidx_compare(const struct rankidx *idx, const struct rankkey *x, const struct rankkey *y)
{
    int c = rankkey_cmp3(x->a, x->b, x->t, y->a, y->b, y->t);
    if (c != 0) {
        return c;
    }
    if (x->pid == y->pid && x->pid != RANKKEY_FOREIGN) {
        return 0;
    }
    return rankidx__cmp_tie(idx, x, y);
}

/* ---- node pool ---- */

int rankidx_pool_new(struct rankidx_pool **out)
{
    struct rankidx_pool *p = calloc(1, sizeof *p);
    if (p == NULL) {
        return LR_ENOMEM;
    }
    *out = p;
    return 0;
}

void rankidx_pool_free(struct rankidx_pool *p)
{
    if (p == NULL) {
        return;
    }
    /* Every index drawing on the pool must be freed first. */
    assert(p->live == 0);
    for (size_t i = 0; i < p->nchunk; i++) {
        RANKIDX__UNPOISON(p->chunk[i], RANKIDX__CHUNK);
        munmap(p->chunk[i], RANKIDX__CHUNK);
    }
    free(p->chunk);
    free(p);
}

size_t rankidx_pool_memory(const struct rankidx_pool *p)
{
    return sizeof *p + p->cap * sizeof p->chunk[0] + p->nchunk * RANKIDX__CHUNK;
}

/* Map one more chunk for @cls, aligned to its size so that it can be a single huge page. */
static int rankidx__pool_grow(struct rankidx_pool *p, struct rankidx__class *cls)
{
    if (p->nchunk == p->cap) {
        size_t cap = p->cap > 0 ? p->cap * 2 : 16;
        char **chunk = realloc(p->chunk, cap * sizeof *chunk);
        if (chunk == NULL) {
            return LR_ENOMEM;
        }
        p->chunk = chunk;
        p->cap = cap;
    }
    /* Map twice the size and trim both ends to the aligned chunk inside. */
    char *raw =
        mmap(NULL, 2 * RANKIDX__CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) {
        return LR_ENOMEM;
    }
    uintptr_t at = ((uintptr_t)raw + RANKIDX__CHUNK - 1) & ~(uintptr_t)(RANKIDX__CHUNK - 1);
    char *c = (char *)at;
    if (c > raw) {
        munmap(raw, (size_t)(c - raw));
    }
    if (c + RANKIDX__CHUNK < raw + 2 * RANKIDX__CHUNK) {
        munmap(c + RANKIDX__CHUNK, (size_t)(raw + 2 * RANKIDX__CHUNK - (c + RANKIDX__CHUNK)));
    }
    /* Advice only: without transparent huge pages the pool still works on small pages. */
    (void)madvise(c, RANKIDX__CHUNK, MADV_HUGEPAGE);
    RANKIDX__POISON(c, RANKIDX__CHUNK);
    p->chunk[p->nchunk++] = c;
    cls->bump = c;
    cls->end = c + RANKIDX__CHUNK;
    return 0;
}

/* Distance between consecutive nodes of @size bytes in a chunk. An inner node is exactly
 * 4 KiB, and nodes packed at a multiple of 4 KiB put the same line of every node (the header
 * above all, which every search reads) in the same few cache sets of L1 and L2, which then
 * evict each other while the rest of the cache sits idle. Two lines of padding (keeping the
 * 128-byte alignment of lh[]) shift each node to other sets: a rank's walk down the inner
 * levels took a third less time at 1 M keys with it. */
static size_t rankidx__stride(size_t size)
{
    return size % 4096 == 0 ? size + 2 * RANKIDX__LINE : size;
}

/* A node of @size bytes (a multiple of the line) from @cls's free list or fresh space. The
 * tail of a chunk too short for @size is left unused. */
static void *rankidx__pool_get(struct rankidx_pool *p, struct rankidx__class *cls, size_t size)
{
    void *node = cls->free;
    if (node != NULL) {
        RANKIDX__UNPOISON(node, size);
        memcpy(&cls->free, node, sizeof cls->free);
    } else {
        if ((size_t)(cls->end - cls->bump) < size && rankidx__pool_grow(p, cls) != 0) {
            return NULL;
        }
        node = cls->bump;
        size_t step = rankidx__stride(size);
        cls->bump = (size_t)(cls->end - cls->bump) > step ? cls->bump + step : cls->end;
        RANKIDX__UNPOISON(node, size);
    }
    p->live++;
    return node;
}

static void rankidx__pool_put(struct rankidx_pool *p, struct rankidx__class *cls, void *node,
                              size_t size)
{
    assert(p->live > 0);
    p->live--;
    memcpy(node, &cls->free, sizeof cls->free);
    cls->free = node;
    RANKIDX__POISON(node, size);
}

/* ---- node helpers ---- */

/* Recompute the header of @leaf from a[] and n: after any change of either. */
static void rankidx__leaf_fix(struct rankidx__leaf *leaf)
{
    for (uint32_t j = 0; j + 1 < RANKIDX__LEAF_GROUPS; j++) {
        uint32_t i = (j + 1) * RANKIDX__LGROUP;
        leaf->hint[j] = i < leaf->n ? leaf->a[i] : INT64_MAX;
    }
}

/* The hints of @leaf as its parent keeps them in lh[] (struct rankidx__lh). */
static struct rankidx__lh rankidx__lh_of(const struct rankidx__leaf *leaf)
{
    struct rankidx__lh h = {.shift = 0};
    uint64_t span = 0;
    if (leaf->n > 0) {
        span = (uint64_t)leaf->a[leaf->n - 1] - (uint64_t)leaf->a[0]; /* exact: sorted */
    }
    while ((span >> h.shift) >= RANKIDX__LH_PAST) {
        h.shift++;
    }
    for (uint32_t j = 0; j + 1 < RANKIDX__LEAF_GROUPS; j++) {
        uint32_t s = (j + 1) * RANKIDX__LGROUP;
        h.d[j] = RANKIDX__LH_PAST;
        if (s < leaf->n) {
            h.d[j] = (uint8_t)(((uint64_t)leaf->a[s] - (uint64_t)leaf->a[0]) >> h.shift);
        }
    }
    return h;
}

/* Recompute lh[@i] of leaf parent @in from its leaf child: after any change of that leaf. */
static void rankidx__lh_set(struct rankidx__inner *in, uint32_t i)
{
    in->lh[i] = rankidx__lh_of(in->child[i]);
}

/* As rankidx__lh_set for @leaf, if it is a child of @in. */
static void rankidx__lh_touch(struct rankidx__inner *in, const struct rankidx__leaf *leaf)
{
    for (uint32_t i = 0; i < in->n; i++) {
        if (in->child[i] == leaf) {
            rankidx__lh_set(in, i);
            return;
        }
    }
}

/* Recompute the header of @in from a[], cnt[] and n: after any change but a count's. */
static void rankidx__inner_fix(struct rankidx__inner *in)
{
    for (uint32_t j = 0; j < RANKIDX__INNER_GROUPS; j++) {
        uint32_t i = (j + 1) * RANKIDX__GROUP;
        if (j + 1 < RANKIDX__INNER_GROUPS) {
            in->hint[j] = i < in->n ? in->a[i] : INT64_MAX;
        }
        uint64_t sum = 0;
        for (uint32_t c = j * RANKIDX__GROUP; c < i && c < in->n; c++) {
            sum += in->cnt[c];
        }
        in->gsum[j] = sum;
    }
}

static struct rankidx__leaf *rankidx__leaf_new(struct rankidx *idx)
{
    struct rankidx__leaf *leaf;
    if (idx->pool != NULL) {
        leaf = rankidx__pool_get(idx->pool, &idx->pool->leaf, sizeof *leaf);
    } else {
        leaf = aligned_alloc(_Alignof(struct rankidx__leaf), sizeof *leaf);
    }
    if (leaf == NULL) {
        return NULL;
    }
    leaf->next = NULL;
    leaf->prev = NULL;
    leaf->n = 0;
    rankidx__leaf_fix(leaf);
    idx->nleaf++;
    return leaf;
}

static struct rankidx__inner *rankidx__inner_new(struct rankidx *idx)
{
    struct rankidx__inner *in;
    if (idx->pool != NULL) {
        in = rankidx__pool_get(idx->pool, &idx->pool->inner, sizeof *in);
    } else {
        in = aligned_alloc(_Alignof(struct rankidx__inner), sizeof *in);
    }
    if (in == NULL) {
        return NULL;
    }
    in->n = 0;
    rankidx__inner_fix(in);
    idx->ninner++;
    return in;
}

static void rankidx__leaf_free(struct rankidx *idx, struct rankidx__leaf *leaf)
{
    assert(idx->nleaf > 0);
    idx->nleaf--;
    if (idx->pool != NULL) {
        rankidx__pool_put(idx->pool, &idx->pool->leaf, leaf, sizeof *leaf);
    } else {
        free(leaf);
    }
}

static void rankidx__inner_free(struct rankidx *idx, struct rankidx__inner *in)
{
    assert(idx->ninner > 0);
    idx->ninner--;
    if (idx->pool != NULL) {
        rankidx__pool_put(idx->pool, &idx->pool->inner, in, sizeof *in);
    } else {
        free(in);
    }
}

/* Free the subtree under @node, whose leaves are @level levels down. The recursion is only
 * as deep as the tree. */
static void rankidx__subtree_free(struct rankidx *idx, void *node, uint32_t level)
{
    if (level == 0) {
        rankidx__leaf_free(idx, node);
        return;
    }
    struct rankidx__inner *in = node;
    for (uint32_t i = 0; i < in->n; i++) {
        rankidx__subtree_free(idx, in->child[i], level - 1);
    }
    rankidx__inner_free(idx, in);
}

static inline struct rankidx__k rankidx__leaf_key(const struct rankidx__leaf *leaf, uint32_t i)
{
    struct rankidx__k k = {leaf->a[i], leaf->b[i], leaf->t[i], leaf->pid[i]};
    return k;
}

static inline struct rankidx__k rankidx__inner_key(const struct rankidx__inner *in, uint32_t i)
{
    struct rankidx__k k = {in->a[i], in->b[i], in->t[i], in->pid[i]};
    return k;
}

/* Minimum key under @node: slot 0 of a leaf or of an inner node alike. */
static inline struct rankidx__k rankidx__node_min(const void *node, uint32_t level)
{
    return level == 0 ? rankidx__leaf_key(node, 0) : rankidx__inner_key(node, 0);
}

/* Callers that also change n or the counts run rankidx__inner_fix afterwards; a lone
 * separator rewrite (rankidx__fix_min) keeps the hint in step here. */
static inline void rankidx__inner_set_key(struct rankidx__inner *in, uint32_t i,
                                          struct rankidx__k k)
{
    if (i > 0 && i % RANKIDX__GROUP == 0) {
        in->hint[i / RANKIDX__GROUP - 1] = k.a;
    }
    in->a[i] = k.a;
    in->b[i] = k.b;
    in->t[i] = k.t;
    in->pid[i] = k.pid;
}

static inline void rankidx__leaf_set(struct rankidx__leaf *leaf, uint32_t i,
                                     const struct rankkey *k)
{
    leaf->a[i] = k->a;
    leaf->b[i] = k->b;
    leaf->t[i] = k->t;
    leaf->pid[i] = k->pid;
}

/* Copy @n slots from @src[si] to @dst[di]; the ranges may overlap. */
static void rankidx__leaf_copy(struct rankidx__leaf *dst, uint32_t di,
                               const struct rankidx__leaf *src, uint32_t si, uint32_t n)
{
    if (n == 0) {
        return;
    }
    memmove(&dst->a[di], &src->a[si], n * sizeof dst->a[0]);
    memmove(&dst->b[di], &src->b[si], n * sizeof dst->b[0]);
    memmove(&dst->t[di], &src->t[si], n * sizeof dst->t[0]);
    memmove(&dst->pid[di], &src->pid[si], n * sizeof dst->pid[0]);
}

static void rankidx__inner_copy(struct rankidx__inner *dst, uint32_t di,
                                const struct rankidx__inner *src, uint32_t si, uint32_t n)
{
    if (n == 0) {
        return;
    }
    memmove(&dst->a[di], &src->a[si], n * sizeof dst->a[0]);
    memmove(&dst->b[di], &src->b[si], n * sizeof dst->b[0]);
    memmove(&dst->t[di], &src->t[si], n * sizeof dst->t[0]);
    memmove(&dst->pid[di], &src->pid[si], n * sizeof dst->pid[0]);
    memmove(&dst->cnt[di], &src->cnt[si], n * sizeof dst->cnt[0]);
    memmove(&dst->child[di], &src->child[si], n * sizeof dst->child[0]);
    memmove(&dst->lh[di], &src->lh[si], n * sizeof dst->lh[0]);
}

static void rankidx__leaf_insert_at(struct rankidx__leaf *leaf, uint32_t pos,
                                    const struct rankkey *k)
{
    assert(leaf->n < RANKIDX__LEAF_CAP && pos <= leaf->n);
    rankidx__leaf_copy(leaf, pos + 1, leaf, pos, leaf->n - pos);
    rankidx__leaf_set(leaf, pos, k);
    leaf->n++;
    rankidx__leaf_fix(leaf);
}

static void rankidx__inner_insert_at(struct rankidx__inner *in, uint32_t pos, void *child,
                                     uint64_t cnt, struct rankidx__k min)
{
    assert(in->n < RANKIDX__INNER_CAP && pos <= in->n);
    rankidx__inner_copy(in, pos + 1, in, pos, in->n - pos);
    rankidx__inner_set_key(in, pos, min);
    in->cnt[pos] = cnt;
    in->child[pos] = child;
    in->n++;
    rankidx__inner_fix(in);
}

static void rankidx__inner_remove_at(struct rankidx__inner *in, uint32_t pos)
{
    assert(pos < in->n);
    rankidx__inner_copy(in, pos, in, pos + 1, in->n - pos - 1);
    in->n--;
    rankidx__inner_fix(in);
}

static uint64_t rankidx__inner_sum(const struct rankidx__inner *in, uint32_t from, uint32_t to)
{
    uint64_t s = 0;
    for (uint32_t i = from; i < to; i++) {
        s += in->cnt[i];
    }
    return s;
}

/* Keys under children 0..@i-1 of @in: whole groups from the header, the rest from the one
 * line of cnt[] that holds slot @i. */
static inline uint64_t rankidx__inner_before(const struct rankidx__inner *in, uint32_t i)
{
    uint32_t g = i / RANKIDX__GROUP;
    uint64_t s = 0;
    for (uint32_t j = 0; j < g; j++) {
        s += in->gsum[j];
    }
    return s + rankidx__inner_sum(in, g * RANKIDX__GROUP, i);
}

/* ---- search ---- */

/* Group (of @gs slots) of a node with @n slots where the values cross @x, from the header:
 * the number of hints < @x (@le 0) or <= @x (@le 1), capped at the last group in use (hints
 * past the end are INT64_MAX, which @le counts when @x is INT64_MAX too). The hints sit in
 * one or two lines, so this waits for memory once. */
static inline uint32_t rankidx__group(const int64_t *hint, uint32_t nhint, uint32_t n, int64_t x,
                                      int le, uint32_t gs)
{
    uint32_t g = 0;
    for (uint32_t j = 0; j < nhint; j++) {
        g += (hint[j] < x || (le && hint[j] == x)) ? 1u : 0u;
    }
    uint32_t last = n > 0 ? (n - 1) / gs : 0;
    return g < last ? g : last;
}

static inline uint32_t rankidx__leaf_group(const struct rankidx__leaf *leaf, int64_t x, int le)
{
    return rankidx__group(leaf->hint, RANKIDX__LEAF_GROUPS - 1, leaf->n, x, le, RANKIDX__LGROUP);
}

static inline uint32_t rankidx__inner_group(const struct rankidx__inner *in, int64_t x, int le)
{
    return rankidx__group(in->hint, RANKIDX__INNER_GROUPS - 1, in->n, x, le, RANKIDX__GROUP);
}

/* Count of @a[i] < @x (@le 0) or <= @x (@le 1) among @a[0..@n), for ascending @a, knowing
 * that the values cross @x inside groups @g..@g1 (of @gs slots): only their lines of a[] are
 * read. */
static inline uint32_t rankidx__count_range(const int64_t *a, uint32_t n, uint32_t g, uint32_t g1,
                                            int64_t x, int le, uint32_t gs)
{
    uint32_t c = g * gs;
    uint32_t end = (g1 + 1) * gs < n ? (g1 + 1) * gs : n;
    for (uint32_t i = c; i < end; i++) {
        c += (a[i] < x || (le && a[i] == x)) ? 1u : 0u;
    }
    return c;
}

/* Count of @a[i] < @x (@le 0) or <= @x (@le 1) among @a[0..@n), for ascending @a, knowing
 * from the header that the values cross @x inside group @g (of @gs slots): only that group's
 * lines of a[] are read. */
static inline uint32_t rankidx__count_in(const int64_t *a, uint32_t n, uint32_t g, int64_t x,
                                         int le, uint32_t gs)
{
    uint32_t c = g * gs;
    uint32_t end = c + gs < n ? c + gs : n;
    for (uint32_t i = c; i < end; i++) {
        c += (a[i] < x || (le && a[i] == x)) ? 1u : 0u;
    }
    return c;
}

/* Slots [@lo, @hi) of the stored keys (@a, @b, @t, @pid) tie with @k on a and bracket
 * it: return the first of them that is above @k or, with @past_equal 0, not below it.
 * The range is nearly always empty or one slot (the key itself), so at most a few b[]/t[]
 * lines are read. */
static inline uint32_t rankidx__search(const struct rankidx *idx, const struct rankkey *k,
                                       const int64_t *a, const int64_t *b, const int64_t *t,
                                       const uint32_t *pid, uint32_t lo, uint32_t hi,
                                       int past_equal)
{
    int need = past_equal ? 0 : 1; /* advance while cmp(k, slot) >= need */
    uint32_t len = hi - lo;
    while (len > 0) {
        uint32_t half = len / 2;
        uint32_t mid = lo + half;
        if (rankidx__cmp_slot(idx, k, a[mid], b[mid], t[mid], pid[mid]) >= need) {
            lo = mid + 1;
            len -= half + 1;
        } else {
            len = half;
        }
    }
    return lo;
}

/* Start loading the lines of b[], t[] and pid[] that hold group @g of @leaf. */
static inline void rankidx__leaf_prefetch_tail(const struct rankidx__leaf *leaf, uint32_t g)
{
    uint32_t s = g * RANKIDX__LGROUP;
    __builtin_prefetch(&leaf->b[s]);
    __builtin_prefetch(&leaf->b[s + RANKIDX__GROUP]);
    __builtin_prefetch(&leaf->t[s]);
    __builtin_prefetch(&leaf->t[s + RANKIDX__GROUP]);
    __builtin_prefetch(&leaf->pid[s]);
}

/* As rankidx__leaf_prefetch_tail, but non-temporal: a rank reads a leaf's lines once, and at
 * tens of millions of keys the same line is not read again before it would be evicted, so they
 * should not push the leaf parents' lines (which every rank reads) out of the shared cache. */
static inline void rankidx__leaf_prefetch_nta(const struct rankidx__leaf *leaf, uint32_t g)
{
    uint32_t s = g * RANKIDX__LGROUP;
    __builtin_prefetch(&leaf->a[s], 0, 0);
    __builtin_prefetch(&leaf->a[s + RANKIDX__GROUP], 0, 0);
    __builtin_prefetch(&leaf->b[s], 0, 0);
    __builtin_prefetch(&leaf->b[s + RANKIDX__GROUP], 0, 0);
    __builtin_prefetch(&leaf->t[s], 0, 0);
    __builtin_prefetch(&leaf->t[s + RANKIDX__GROUP], 0, 0);
    __builtin_prefetch(&leaf->pid[s], 0, 0);
}

/* Number of slots of @leaf ordered strictly before @k. */
static inline uint32_t rankidx__leaf_lower(const struct rankidx *idx,
                                           const struct rankidx__leaf *leaf,
                                           const struct rankkey *k)
{
    uint32_t n = leaf->n;
    uint32_t g = rankidx__leaf_group(leaf, k->a, 0);
    /* A probe is most often a stored key (a player's own rank), which ties with itself on a,
     * so the rest of the key is read too: load its lines alongside a[]'s. */
    rankidx__leaf_prefetch_tail(leaf, g);
    uint32_t lo = rankidx__count_in(leaf->a, n, g, k->a, 0, RANKIDX__LGROUP);
    if (lo == n || leaf->a[lo] != k->a) {
        return lo; /* nothing ties on a */
    }
    uint32_t hi =
        rankidx__count_in(leaf->a, n, rankidx__leaf_group(leaf, k->a, 1), k->a, 1, RANKIDX__LGROUP);
    return rankidx__search(idx, k, leaf->a, leaf->b, leaf->t, leaf->pid, lo, hi, 0);
}

/* Child of @in whose key range holds @k: the last slot whose minimum is <= @k, or 0. */
static inline uint32_t rankidx__inner_route(const struct rankidx *idx,
                                            const struct rankidx__inner *in,
                                            const struct rankkey *k, int want_lh)
{
    uint32_t n = in->n;
    uint32_t g = rankidx__inner_group(in, k->a, 0);
    /* Unless a ties, the answer lies in group g (hint[g-1] < k), so its counts and children
     * can load alongside its keys. */
    __builtin_prefetch(&in->cnt[g * RANKIDX__GROUP]);
    __builtin_prefetch(&in->child[g * RANKIDX__GROUP]);
    if (want_lh) {
        __builtin_prefetch(&in->lh[g * RANKIDX__GROUP]);
        __builtin_prefetch(&in->lh[g * RANKIDX__GROUP + RANKIDX__GROUP / 2]);
    }
    uint32_t lo = rankidx__count_in(in->a, n, g, k->a, 0, RANKIDX__GROUP);
    uint32_t le = lo; /* slots whose minimum is <= k */
    if (lo < n && in->a[lo] == k->a) {
        uint32_t hi =
            rankidx__count_in(in->a, n, rankidx__inner_group(in, k->a, 1), k->a, 1, RANKIDX__GROUP);
        le = rankidx__search(idx, k, in->a, in->b, in->t, in->pid, lo, hi, 1);
    }
    return le > 0 ? le - 1 : 0;
}

/* Walk from the root to the leaf whose range holds @k, recording the path. */
static struct rankidx__leaf *rankidx__descend(const struct rankidx *idx, const struct rankkey *k,
                                              struct rankidx__path *path)
{
    void *node = idx->root;
    for (uint32_t l = 0; l < idx->height; l++) {
        struct rankidx__inner *in = node;
        uint32_t i = rankidx__inner_route(idx, in, k, 0);
        path->node[l] = in;
        path->idx[l] = i;
        node = in->child[i];
    }
    return node;
}

/* The minimum under the node reached at depth @depth on @path became @min: rewrite the
 * separators above it, up to the first ancestor where it is not the leftmost child. */
static void rankidx__fix_min(struct rankidx__path *path, uint32_t depth, struct rankidx__k min)
{
    for (uint32_t l = depth; l-- > 0;) {
        rankidx__inner_set_key(path->node[l], path->idx[l], min);
        if (path->idx[l] != 0) {
            return;
        }
    }
}

/* ---- public: lifecycle and queries ---- */

int rankidx_new(const struct rankidx_names *names, struct rankidx_pool *pool, struct rankidx **out)
{
    struct rankidx *idx = calloc(1, sizeof *idx);
    if (idx == NULL) {
        return LR_ENOMEM;
    }
    if (names != NULL) {
        idx->names = *names;
    }
    idx->pool = pool;
    *out = idx;
    return 0;
}

void rankidx_free(struct rankidx *idx)
{
    if (idx == NULL) {
        return;
    }
    if (idx->root != NULL) {
        rankidx__subtree_free(idx, idx->root, idx->height);
    }
    free(idx);
}

uint64_t rankidx_count(const struct rankidx *idx)
{
    return idx->count;
}

size_t rankidx_memory(const struct rankidx *idx)
{
    return sizeof *idx + idx->nleaf * sizeof(struct rankidx__leaf) +
           idx->ninner * sizeof(struct rankidx__inner);
}

uint64_t rankidx_count_before(const struct rankidx *idx, const struct rankkey *key)
{
    const void *node = idx->root;
    if (node == NULL) {
        return 0;
    }
    uint32_t h = idx->height;
    if (h == 0) {
        return rankidx__leaf_lower(idx, node, key);
    }
    uint64_t before = 0;
    for (uint32_t l = 0; l + 1 < h; l++) {
        const struct rankidx__inner *in = node;
        uint32_t i = rankidx__inner_route(idx, in, key, 0);
        before += rankidx__inner_before(in, i);
        node = in->child[i];
    }
    /* The leaf's parent tells its size (cnt[i]), its minimum (a[i]) and, in lh[i], which
     * line of a[] holds the answer, so the leaf's own header is not read. */
    const struct rankidx__inner *in = node;
    uint32_t i = rankidx__inner_route(idx, in, key, 1);
    before += rankidx__inner_before(in, i);
    const struct rankidx__leaf *leaf = in->child[i];
    int64_t a0 = in->a[i];
    if (key->a < a0) {
        return before; /* below the whole leaf (only possible at child 0) */
    }
    const struct rankidx__lh *lh = &in->lh[i];
    uint64_t xd = ((uint64_t)key->a - (uint64_t)a0) >> lh->shift;
    uint32_t xs = xd < RANKIDX__LH_PAST ? (uint32_t)xd : RANKIDX__LH_PAST;
    uint32_t n = (uint32_t)in->cnt[i];
    uint32_t last = (n - 1) / RANKIDX__LGROUP;
    uint32_t g = 0;  /* groups whose successor's first key is surely below key->a */
    uint32_t ge = 0; /* groups whose successor's first key may not be above key->a */
    for (uint32_t j = 0; j + 1 < RANKIDX__LEAF_GROUPS; j++) {
        g += lh->d[j] < xs ? 1u : 0u;
        ge += lh->d[j] <= xs ? 1u : 0u;
    }
    g = g < last ? g : last;
    ge = ge < last ? ge : last;
    /* Both ends of the key's possible slots lie in groups g..ge. A stored key as probe (the
     * usual case) ties with itself on a, so its b[], t[] and pid[] lines are read too: load
     * them with a[]'s rather than after finding the tie. */
    rankidx__leaf_prefetch_nta(leaf, g);
    if (g != ge) {
        rankidx__leaf_prefetch_nta(leaf, ge);
    }
    uint32_t lo = rankidx__count_range(leaf->a, n, g, ge, key->a, 0, RANKIDX__LGROUP);
    if (lo == n || leaf->a[lo] != key->a) {
        return before + lo;
    }
    uint32_t hi = rankidx__count_range(leaf->a, n, g, ge, key->a, 1, RANKIDX__LGROUP);
    return before + rankidx__search(idx, key, leaf->a, leaf->b, leaf->t, leaf->pid, lo, hi, 0);
}

int rankidx_contains(const struct rankidx *idx, const struct rankkey *key)
{
    if (idx->root == NULL) {
        return 0;
    }
    struct rankidx__path path;
    const struct rankidx__leaf *leaf = rankidx__descend(idx, key, &path);
    uint32_t pos = rankidx__leaf_lower(idx, leaf, key);
    return pos < leaf->n && rankidx__cmp_slot(idx, key, leaf->a[pos], leaf->b[pos], leaf->t[pos],
                                              leaf->pid[pos]) == 0;
}

int rankidx_seek(const struct rankidx *idx, uint64_t rank0, struct rankidx_iter *it)
{
    it->leaf = NULL;
    it->pos = 0;
    it->rank0 = rank0;
    if (rank0 >= idx->count) {
        return LR_ENOTFOUND;
    }
    const void *node = idx->root;
    uint64_t r = rank0;
    for (uint32_t l = 0; l < idx->height; l++) {
        const struct rankidx__inner *in = node;
        /* r is below this subtree's count, so both walks stop inside the node. */
        uint32_t g = 0;
        while (r >= in->gsum[g]) {
            r -= in->gsum[g++];
        }
        uint32_t i = g * RANKIDX__GROUP;
        while (r >= in->cnt[i]) {
            r -= in->cnt[i++];
        }
        assert(i < in->n && r < in->cnt[i]);
        node = in->child[i];
    }
    const struct rankidx__leaf *leaf = node;
    assert(r < leaf->n);
    it->leaf = leaf;
    it->pos = (uint32_t)r;
    return 0;
}

static void rankidx__read(const struct rankidx__leaf *leaf, uint32_t pos, struct rankkey *key)
{
    key->a = leaf->a[pos];
    key->b = leaf->b[pos];
    key->t = leaf->t[pos];
    key->pid = leaf->pid[pos];
    key->idlen = 0;
    key->id = NULL;
}

int rankidx_next(struct rankidx_iter *it, struct rankkey *key)
{
    const struct rankidx__leaf *leaf = it->leaf;
    if (leaf == NULL) {
        return 0;
    }
    if (it->pos >= leaf->n) {
        if (leaf->next == NULL) {
            return 0;
        }
        leaf = leaf->next;
        it->leaf = leaf;
        it->pos = 0;
    }
    rankidx__read(leaf, it->pos, key);
    it->pos++;
    it->rank0++;
    return 1;
}

int rankidx_prev(struct rankidx_iter *it, struct rankkey *key)
{
    const struct rankidx__leaf *leaf = it->leaf;
    if (leaf == NULL) {
        return 0;
    }
    if (it->pos == 0) {
        if (leaf->prev == NULL) {
            return 0;
        }
        leaf = leaf->prev;
        it->leaf = leaf;
        it->pos = leaf->n;
    }
    it->pos--;
    it->rank0--;
    rankidx__read(leaf, it->pos, key);
    return 1;
}

/* ---- insert ---- */

/* Lay out the keys of adjacent leaves @l ++ @r with @k inserted at position @g of that
 * sequence so that @l ends up holding @nl keys and @r the rest. Both must fit. */
static void rankidx__leaf_share(struct rankidx__leaf *l, struct rankidx__leaf *r, uint32_t g,
                                const struct rankkey *k, uint32_t nl)
{
    uint32_t total = l->n + r->n + 1;
    assert(g < total && nl <= RANKIDX__LEAF_CAP && total - nl <= RANKIDX__LEAF_CAP);
    uint32_t keep = nl - (g < nl ? 1 : 0); /* old keys that end in @l */
    if (keep > l->n) {
        uint32_t m = keep - l->n;
        rankidx__leaf_copy(l, l->n, r, 0, m);
        rankidx__leaf_copy(r, 0, r, m, r->n - m);
        l->n += m;
        r->n -= m;
    } else if (keep < l->n) {
        uint32_t m = l->n - keep;
        rankidx__leaf_copy(r, m, r, 0, r->n);
        rankidx__leaf_copy(r, 0, l, keep, m);
        l->n = keep;
        r->n += m;
    }
    if (g < nl) {
        rankidx__leaf_insert_at(l, g, k);
    } else {
        rankidx__leaf_insert_at(r, g - nl, k);
    }
    rankidx__leaf_fix(l);
    rankidx__leaf_fix(r);
}

/* Full @leaf, reached at depth @h on @path, must take @k at @pos: move keys into the sibling
 * under the same parent with more room instead of splitting, and fix the parent's counts and
 * separators (not the counts above it). Returns 0, changing nothing, if neither has room. */
static int rankidx__try_share(struct rankidx__path *path, uint32_t h, struct rankidx__leaf *leaf,
                              uint32_t pos, const struct rankkey *k)
{
    struct rankidx__inner *parent = path->node[h - 1];
    uint32_t ci = path->idx[h - 1];
    struct rankidx__leaf *left = ci > 0 ? parent->child[ci - 1] : NULL;
    struct rankidx__leaf *right = ci + 1 < parent->n ? parent->child[ci + 1] : NULL;
    uint32_t lroom = left != NULL ? RANKIDX__LEAF_CAP - left->n : 0;
    uint32_t rroom = right != NULL ? RANKIDX__LEAF_CAP - right->n : 0;
    if (lroom == 0 && rroom == 0) {
        return 0;
    }
    if (lroom >= rroom) {
        uint32_t total = left->n + leaf->n + 1;
        rankidx__leaf_share(left, leaf, left->n + pos, k, (total + 1) / 2);
        parent->cnt[ci - 1] = left->n;
        parent->cnt[ci] = leaf->n;
        /* @k routed to @leaf, so it is not below left's minimum: only leaf's changed. */
        rankidx__inner_set_key(parent, ci, rankidx__leaf_key(leaf, 0));
        rankidx__lh_set(parent, ci - 1);
    } else {
        uint32_t total = leaf->n + right->n + 1;
        rankidx__leaf_share(leaf, right, pos, k, total / 2);
        parent->cnt[ci] = leaf->n;
        parent->cnt[ci + 1] = right->n;
        rankidx__inner_set_key(parent, ci + 1, rankidx__leaf_key(right, 0));
        if (pos == 0) {
            rankidx__fix_min(path, h, rankidx__leaf_key(leaf, 0));
        }
        rankidx__lh_set(parent, ci + 1);
    }
    rankidx__lh_set(parent, ci);
    rankidx__inner_fix(parent);
    return 1;
}

static void rankidx__count_add(struct rankidx__path *path, uint32_t depth, int64_t delta)
{
    for (uint32_t l = 0; l < depth; l++) {
        struct rankidx__inner *in = path->node[l];
        uint32_t i = path->idx[l];
        in->cnt[i] += (uint64_t)delta;
        in->gsum[i / RANKIDX__GROUP] += (uint64_t)delta;
    }
}

/* Split full @in, inserting (@child, @cnt, @min) at @pos of the combined sequence: the upper
 * half moves to empty @right. */
static void rankidx__inner_split(struct rankidx__inner *in, struct rankidx__inner *right,
                                 uint32_t pos, void *child, uint64_t cnt, struct rankidx__k min)
{
    assert(in->n == RANKIDX__INNER_CAP && right->n == 0 && pos <= in->n);
    uint32_t nl = (RANKIDX__INNER_CAP + 1) / 2;
    uint32_t keep = nl - (pos < nl ? 1 : 0);
    rankidx__inner_copy(right, 0, in, keep, in->n - keep);
    right->n = in->n - keep;
    in->n = keep;
    if (pos < nl) {
        rankidx__inner_insert_at(in, pos, child, cnt, min);
    } else {
        rankidx__inner_insert_at(right, pos - nl, child, cnt, min);
    }
    rankidx__inner_fix(in);
    rankidx__inner_fix(right);
}

int rankidx_insert(struct rankidx *idx, const struct rankkey *key)
{
    struct rankidx__path path;
    /* At most one new leaf, one new inner node per level and a new root. */
    void *spare[RANKIDX__MAX_HEIGHT + 2];
    uint32_t nspare = 0;
    uint32_t h = idx->height;
    int rv;

    if (key->pid == RANKKEY_FOREIGN) {
        return LR_EINVAL;
    }
    if (idx->root == NULL) {
        struct rankidx__leaf *leaf = rankidx__leaf_new(idx);
        if (leaf == NULL) {
            return LR_ENOMEM;
        }
        rankidx__leaf_insert_at(leaf, 0, key);
        idx->root = leaf;
        idx->count = 1;
        return 0;
    }

    struct rankidx__leaf *leaf = rankidx__descend(idx, key, &path);
    uint32_t pos = rankidx__leaf_lower(idx, leaf, key);
    if (pos < leaf->n && rankidx__cmp_slot(idx, key, leaf->a[pos], leaf->b[pos], leaf->t[pos],
                                           leaf->pid[pos]) == 0) {
        return LR_EEXIST;
    }

    if (leaf->n < RANKIDX__LEAF_CAP) {
        rankidx__leaf_insert_at(leaf, pos, key);
        rankidx__count_add(&path, h, 1);
        if (h > 0) {
            rankidx__lh_set(path.node[h - 1], path.idx[h - 1]);
        }
        if (pos == 0) {
            rankidx__fix_min(&path, h, rankidx__leaf_key(leaf, 0));
        }
        idx->count++;
        return 0;
    }
    if (h > 0 && rankidx__try_share(&path, h, leaf, pos, key)) {
        rankidx__count_add(&path, h - 1, 1);
        idx->count++;
        return 0;
    }

    /* Split. Allocate everything first so that failure leaves the index untouched: a new
     * leaf, one inner node for each full ancestor, and a new root if all of them are full. */
    uint32_t full = 0;
    while (full < h && path.node[h - 1 - full]->n == RANKIDX__INNER_CAP) {
        full++;
    }
    uint32_t need_inner = full + (full == h ? 1 : 0);
    struct rankidx__leaf *nleaf = rankidx__leaf_new(idx);
    if (nleaf == NULL) {
        rv = LR_ENOMEM;
        goto err;
    }
    for (nspare = 0; nspare < need_inner; nspare++) {
        spare[nspare] = rankidx__inner_new(idx);
        if (spare[nspare] == NULL) {
            rv = LR_ENOMEM;
            goto err_after_leaf;
        }
    }

    rankidx__count_add(&path, h, 1);
    nleaf->prev = leaf;
    nleaf->next = leaf->next;
    if (leaf->next != NULL) {
        leaf->next->prev = nleaf;
    }
    leaf->next = nleaf;
    rankidx__leaf_share(leaf, nleaf, pos, key, (RANKIDX__LEAF_CAP + 1) / 2);
    if (pos == 0) {
        rankidx__fix_min(&path, h, rankidx__leaf_key(leaf, 0));
    }

    /* Hand the new right node up until an ancestor has room for it. */
    void *lnode = leaf;
    uint64_t lcnt = leaf->n;
    void *rnode = nleaf;
    uint64_t rcnt = nleaf->n;
    struct rankidx__k rmin = rankidx__leaf_key(nleaf, 0);
    uint32_t used = 0;
    uint32_t l = h;
    while (l-- > 0) {
        struct rankidx__inner *in = path.node[l];
        uint32_t i = path.idx[l];
        in->cnt[i] = lcnt;
        if (in->n < RANKIDX__INNER_CAP) {
            rankidx__inner_insert_at(in, i + 1, rnode, rcnt, rmin);
            if (l + 1 == h) {
                rankidx__lh_set(in, i);
                rankidx__lh_set(in, i + 1);
            }
            break;
        }
        assert(used < nspare);
        struct rankidx__inner *right = spare[used++];
        rankidx__inner_split(in, right, i + 1, rnode, rcnt, rmin);
        if (l + 1 == h) {
            /* The two leaves landed on either side or both on one. */
            rankidx__lh_touch(in, leaf);
            rankidx__lh_touch(in, nleaf);
            rankidx__lh_touch(right, leaf);
            rankidx__lh_touch(right, nleaf);
        }
        lnode = in;
        lcnt = rankidx__inner_sum(in, 0, in->n);
        rnode = right;
        rcnt = rankidx__inner_sum(right, 0, right->n);
        rmin = rankidx__inner_key(right, 0);
    }
    if (used < nspare) {
        /* Every level split (l wrapped past the root): grow a new root. */
        assert(used + 1 == nspare && lnode == idx->root);
        struct rankidx__inner *root = spare[used++];
        root->n = 2;
        rankidx__inner_set_key(root, 0, rankidx__node_min(lnode, h));
        root->cnt[0] = lcnt;
        root->child[0] = lnode;
        rankidx__inner_set_key(root, 1, rmin);
        root->cnt[1] = rcnt;
        root->child[1] = rnode;
        rankidx__inner_fix(root);
        if (h == 0) {
            rankidx__lh_set(root, 0);
            rankidx__lh_set(root, 1);
        }
        idx->root = root;
        idx->height = h + 1;
        assert(idx->height < RANKIDX__MAX_HEIGHT);
    }
    idx->count++;
    return 0;

err_after_leaf:
    while (nspare-- > 0) {
        rankidx__inner_free(idx, spare[nspare]);
    }
    rankidx__leaf_free(idx, nleaf);
err:
    assert(rv != 0);
    return rv;
}

/* ---- delete ---- */

/* Leaf child @ci of @parent fell below the minimum: merge it with a sibling if the two fit
 * comfortably in one leaf, else even the two out. Never allocates. */
static void rankidx__leaf_rebalance(struct rankidx *idx, struct rankidx__inner *parent, uint32_t ci)
{
    assert(parent->n >= 2);
    uint32_t li;
    if (ci == 0) {
        li = 0;
    } else if (ci + 1 == parent->n) {
        li = ci - 1;
    } else {
        /* Pair with the emptier sibling: likelier to merge, which frees memory. */
        const struct rankidx__leaf *lft = parent->child[ci - 1];
        const struct rankidx__leaf *rgt = parent->child[ci + 1];
        li = lft->n <= rgt->n ? ci - 1 : ci;
    }
    struct rankidx__leaf *l = parent->child[li];
    struct rankidx__leaf *r = parent->child[li + 1];
    uint32_t total = l->n + r->n;
    if (total <= RANKIDX__LEAF_MERGE) {
        rankidx__leaf_copy(l, l->n, r, 0, r->n);
        l->n = total;
        rankidx__leaf_fix(l);
        l->next = r->next;
        if (r->next != NULL) {
            r->next->prev = l;
        }
        parent->cnt[li] = total;
        rankidx__inner_remove_at(parent, li + 1);
        rankidx__lh_set(parent, li);
        rankidx__leaf_free(idx, r);
        return;
    }
    uint32_t nl = total / 2;
    if (nl > l->n) {
        uint32_t m = nl - l->n;
        rankidx__leaf_copy(l, l->n, r, 0, m);
        rankidx__leaf_copy(r, 0, r, m, r->n - m);
    } else {
        uint32_t m = l->n - nl;
        rankidx__leaf_copy(r, m, r, 0, r->n);
        rankidx__leaf_copy(r, 0, l, nl, m);
    }
    l->n = nl;
    r->n = total - nl;
    rankidx__leaf_fix(l);
    rankidx__leaf_fix(r);
    parent->cnt[li] = l->n;
    parent->cnt[li + 1] = r->n;
    rankidx__inner_set_key(parent, li + 1, rankidx__leaf_key(r, 0));
    rankidx__inner_fix(parent);
    rankidx__lh_set(parent, li);
    rankidx__lh_set(parent, li + 1);
}

/* Inner child @ci of @parent fell below the minimum: as rankidx__leaf_rebalance. */
static void rankidx__inner_rebalance(struct rankidx *idx, struct rankidx__inner *parent,
                                     uint32_t ci)
{
    assert(parent->n >= 2);
    uint32_t li;
    if (ci == 0) {
        li = 0;
    } else if (ci + 1 == parent->n) {
        li = ci - 1;
    } else {
        const struct rankidx__inner *lft = parent->child[ci - 1];
        const struct rankidx__inner *rgt = parent->child[ci + 1];
        li = lft->n <= rgt->n ? ci - 1 : ci;
    }
    struct rankidx__inner *l = parent->child[li];
    struct rankidx__inner *r = parent->child[li + 1];
    uint32_t total = l->n + r->n;
    if (total <= RANKIDX__INNER_MERGE) {
        rankidx__inner_copy(l, l->n, r, 0, r->n);
        l->n = total;
        rankidx__inner_fix(l);
        parent->cnt[li] += parent->cnt[li + 1];
        rankidx__inner_remove_at(parent, li + 1);
        rankidx__inner_free(idx, r);
        return;
    }
    uint32_t nl = total / 2;
    uint64_t moved;
    if (nl > l->n) {
        uint32_t m = nl - l->n;
        moved = rankidx__inner_sum(r, 0, m);
        rankidx__inner_copy(l, l->n, r, 0, m);
        rankidx__inner_copy(r, 0, r, m, r->n - m);
        parent->cnt[li] += moved;
        parent->cnt[li + 1] -= moved;
    } else {
        uint32_t m = l->n - nl;
        moved = rankidx__inner_sum(l, nl, l->n);
        rankidx__inner_copy(r, m, r, 0, r->n);
        rankidx__inner_copy(r, 0, l, nl, m);
        parent->cnt[li] -= moved;
        parent->cnt[li + 1] += moved;
    }
    l->n = nl;
    r->n = total - nl;
    rankidx__inner_fix(l);
    rankidx__inner_fix(r);
    rankidx__inner_set_key(parent, li + 1, rankidx__inner_key(r, 0));
    rankidx__inner_fix(parent);
}

int rankidx_delete(struct rankidx *idx, const struct rankkey *key)
{
    struct rankidx__path path;
    uint32_t h = idx->height;

    if (idx->root == NULL || key->pid == RANKKEY_FOREIGN) {
        return LR_ENOTFOUND;
    }
    struct rankidx__leaf *leaf = rankidx__descend(idx, key, &path);
    uint32_t pos = rankidx__leaf_lower(idx, leaf, key);
    if (pos >= leaf->n || rankidx__cmp_slot(idx, key, leaf->a[pos], leaf->b[pos], leaf->t[pos],
                                            leaf->pid[pos]) != 0) {
        return LR_ENOTFOUND;
    }
    rankidx__leaf_copy(leaf, pos, leaf, pos + 1, leaf->n - pos - 1);
    leaf->n--;
    rankidx__leaf_fix(leaf);
    idx->count--;
    if (h == 0) {
        if (leaf->n == 0) {
            rankidx__leaf_free(idx, leaf);
            idx->root = NULL;
        }
        return 0;
    }
    rankidx__count_add(&path, h, -1);
    rankidx__lh_set(path.node[h - 1], path.idx[h - 1]);
    /* A non-root leaf held at least RANKIDX__LEAF_MIN keys, so it is not empty now. */
    assert(leaf->n > 0);
    if (pos == 0) {
        rankidx__fix_min(&path, h, rankidx__leaf_key(leaf, 0));
    }
    if (leaf->n >= RANKIDX__LEAF_MIN) {
        return 0;
    }
    rankidx__leaf_rebalance(idx, path.node[h - 1], path.idx[h - 1]);
    for (uint32_t l = h - 1; l > 0; l--) {
        if (path.node[l]->n >= RANKIDX__INNER_MIN) {
            break;
        }
        rankidx__inner_rebalance(idx, path.node[l - 1], path.idx[l - 1]);
    }
    while (idx->height > 0 && ((struct rankidx__inner *)idx->root)->n == 1) {
        struct rankidx__inner *root = idx->root;
        idx->root = root->child[0];
        idx->height--;
        rankidx__inner_free(idx, root);
    }
    return 0;
}

/* ---- load ---- */

int rankidx_load(struct rankidx *idx, const struct rankkey *keys, size_t n)
{
    void **nodes;
    size_t levels[RANKIDX__MAX_HEIGHT];
    size_t nlevels = 0;
    size_t total = 0;
    size_t made = 0;
    int rv;

    for (size_t i = 0; i < n; i++) {
        if (keys[i].pid == RANKKEY_FOREIGN ||
            (i > 0 && rankidx_compare(idx, &keys[i - 1], &keys[i]) >= 0)) {
            return LR_EINVAL;
        }
    }

    /* Level sizes, leaves first: as few nodes as fit, keys spread evenly so that every node
     * is full or one short and none falls below the fill minimum. */
    if (n > 0) {
        size_t m = (n + RANKIDX__LEAF_CAP - 1) / RANKIDX__LEAF_CAP;
        levels[nlevels++] = m;
        total += m;
        while (m > 1) {
            m = (m + RANKIDX__INNER_CAP - 1) / RANKIDX__INNER_CAP;
            if (nlevels == RANKIDX__MAX_HEIGHT) {
                return LR_ENOMEM;
            }
            levels[nlevels++] = m;
            total += m;
        }
    }

    /* Allocate every node up front into a scratch index so that a failure changes nothing. */
    struct rankidx fresh = {.names = idx->names, .pool = idx->pool};
    nodes = malloc((total > 0 ? total : 1) * sizeof *nodes);
    if (nodes == NULL) {
        rv = LR_ENOMEM;
        goto err;
    }
    for (size_t lv = 0, k = 0; lv < nlevels; lv++) {
        for (size_t j = 0; j < levels[lv]; j++, k++) {
            nodes[k] =
                lv == 0 ? (void *)rankidx__leaf_new(&fresh) : (void *)rankidx__inner_new(&fresh);
            if (nodes[k] == NULL) {
                rv = LR_ENOMEM;
                goto err_after_nodes;
            }
            made++;
        }
    }

    /* Fill leaves and link them. */
    if (n > 0) {
        size_t m = levels[0];
        size_t off = 0;
        for (size_t j = 0; j < m; j++) {
            struct rankidx__leaf *leaf = nodes[j];
            size_t take = n / m + (j < n % m ? 1 : 0);
            for (size_t s = 0; s < take; s++) {
                rankidx__leaf_set(leaf, (uint32_t)s, &keys[off + s]);
            }
            leaf->n = (uint32_t)take;
            rankidx__leaf_fix(leaf);
            leaf->prev = j > 0 ? nodes[j - 1] : NULL;
            leaf->next = j + 1 < m ? nodes[j + 1] : NULL;
            off += take;
        }
        assert(off == n);
    }

    /* Each inner level adopts the level below it. */
    size_t below = 0; /* index in @nodes of the first node of the level below */
    for (size_t lv = 1; lv < nlevels; lv++) {
        size_t m = levels[lv];
        size_t nb = levels[lv - 1];
        size_t first = below + nb;
        size_t off = 0;
        for (size_t j = 0; j < m; j++) {
            struct rankidx__inner *in = nodes[first + j];
            size_t take = nb / m + (j < nb % m ? 1 : 0);
            for (size_t s = 0; s < take; s++) {
                void *child = nodes[below + off + s];
                uint64_t cnt;
                if (lv == 1) {
                    cnt = ((struct rankidx__leaf *)child)->n;
                } else {
                    const struct rankidx__inner *ci = child;
                    cnt = rankidx__inner_sum(ci, 0, ci->n);
                }
                rankidx__inner_set_key(in, (uint32_t)s, rankidx__node_min(child, (uint32_t)lv - 1));
                in->cnt[s] = cnt;
                in->child[s] = child;
            }
            in->n = (uint32_t)take;
            rankidx__inner_fix(in);
            for (uint32_t s = 0; lv == 1 && s < in->n; s++) {
                rankidx__lh_set(in, s);
            }
            off += take;
        }
        assert(off == nb);
        below = first;
    }

    if (idx->root != NULL) {
        rankidx__subtree_free(idx, idx->root, idx->height);
    }
    assert(idx->nleaf == 0 && idx->ninner == 0);
    idx->root = n > 0 ? nodes[total - 1] : NULL;
    idx->height = nlevels > 0 ? (uint32_t)nlevels - 1 : 0;
    idx->count = n;
    idx->nleaf = fresh.nleaf;
    idx->ninner = fresh.ninner;
    free(nodes);
    return 0;

err_after_nodes:
    for (size_t k = 0; k < made; k++) {
        if (k < levels[0]) {
            rankidx__leaf_free(&fresh, nodes[k]);
        } else {
            rankidx__inner_free(&fresh, nodes[k]);
        }
    }
    free(nodes);
err:
    assert(rv != 0);
    return rv;
}

/* ---- check ---- */

struct rankidx__walk {
    const struct rankidx__leaf *last; /* previous leaf in key order */
    size_t nleaf;
    size_t ninner;
};

static int rankidx__cmp_keys(const struct rankidx *idx, struct rankidx__k x, struct rankidx__k y)
{
    struct rankkey kx = {.a = x.a, .b = x.b, .t = x.t, .pid = x.pid, .idlen = 0, .id = NULL};
    return rankidx__cmp_slot(idx, &kx, y.a, y.b, y.t, y.pid);
}

static int rankidx__key_eq(struct rankidx__k x, struct rankidx__k y)
{
    return x.a == y.a && x.b == y.b && x.t == y.t && x.pid == y.pid;
}

/* Check the subtree under @node (leaves @level down) and return its key count in *@cnt.
 * Recursion is bounded by the height. */
static int rankidx__check_node(const struct rankidx *idx, const void *node, uint32_t level,
                               int is_root, struct rankidx__walk *w, uint64_t *cnt)
{
    if (level == 0) {
        const struct rankidx__leaf *leaf = node;
        if (leaf->n == 0 || leaf->n > RANKIDX__LEAF_CAP ||
            (!is_root && leaf->n < RANKIDX__LEAF_MIN)) {
            return LR_ECORRUPT;
        }
        for (uint32_t i = 0; i < leaf->n; i++) {
            if (leaf->pid[i] == RANKKEY_FOREIGN) {
                return LR_ECORRUPT;
            }
            if (i > 0 && rankidx__cmp_keys(idx, rankidx__leaf_key(leaf, i - 1),
                                           rankidx__leaf_key(leaf, i)) >= 0) {
                return LR_ECORRUPT;
            }
        }
        for (uint32_t j = 0; j + 1 < RANKIDX__LEAF_GROUPS; j++) {
            uint32_t i = (j + 1) * RANKIDX__LGROUP;
            if (leaf->hint[j] != (i < leaf->n ? leaf->a[i] : INT64_MAX)) {
                return LR_ECORRUPT;
            }
        }
        if (leaf->prev != w->last) {
            return LR_ECORRUPT;
        }
        if (w->last != NULL) {
            if (w->last->next != leaf ||
                rankidx__cmp_keys(idx, rankidx__leaf_key(w->last, w->last->n - 1),
                                  rankidx__leaf_key(leaf, 0)) >= 0) {
                return LR_ECORRUPT;
            }
        }
        w->last = leaf;
        w->nleaf++;
        *cnt = leaf->n;
        return 0;
    }
    const struct rankidx__inner *in = node;
    if (in->n > RANKIDX__INNER_CAP || in->n < (is_root ? 2 : RANKIDX__INNER_MIN)) {
        return LR_ECORRUPT;
    }
    w->ninner++;
    uint64_t sum = 0;
    for (uint32_t i = 0; i < in->n; i++) {
        uint64_t c;
        if (in->child[i] == NULL) {
            return LR_ECORRUPT;
        }
        int rv = rankidx__check_node(idx, in->child[i], level - 1, 0, w, &c);
        if (rv != 0) {
            return rv;
        }
        struct rankidx__k min = rankidx__node_min(in->child[i], level - 1);
        if (c != in->cnt[i] || !rankidx__key_eq(rankidx__inner_key(in, i), min)) {
            return LR_ECORRUPT;
        }
        if (level == 1) {
            struct rankidx__lh h = rankidx__lh_of(in->child[i]);
            if (memcmp(&h, &in->lh[i], sizeof h) != 0) {
                return LR_ECORRUPT;
            }
        }
        sum += c;
    }
    for (uint32_t j = 0; j < RANKIDX__INNER_GROUPS; j++) {
        uint32_t i = (j + 1) * RANKIDX__GROUP;
        uint32_t to = i < in->n ? i : in->n;
        uint32_t from = j * RANKIDX__GROUP < to ? j * RANKIDX__GROUP : to;
        if ((j + 1 < RANKIDX__INNER_GROUPS && in->hint[j] != (i < in->n ? in->a[i] : INT64_MAX)) ||
            in->gsum[j] != rankidx__inner_sum(in, from, to)) {
            return LR_ECORRUPT;
        }
    }
    *cnt = sum;
    return 0;
}

int rankidx_check(const struct rankidx *idx)
{
    if (idx->root == NULL) {
        return idx->count == 0 && idx->height == 0 && idx->nleaf == 0 && idx->ninner == 0
                   ? 0
                   : LR_ECORRUPT;
    }
    if (idx->height >= RANKIDX__MAX_HEIGHT) {
        return LR_ECORRUPT;
    }
    struct rankidx__walk w = {NULL, 0, 0};
    uint64_t cnt;
    int rv = rankidx__check_node(idx, idx->root, idx->height, 1, &w, &cnt);
    if (rv != 0) {
        return rv;
    }
    if (cnt != idx->count || w.last->next != NULL || w.nleaf != idx->nleaf ||
        w.ninner != idx->ninner) {
        return LR_ECORRUPT;
    }
    return 0;
}
