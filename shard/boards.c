/* shard/boards.c — board configs and their rank sets (see shard_int.h).
 *
 * Order folding: a desc board stores -score and -subscore so every index sorts ascending and
 * one comparator serves both orders; scores are bounded by 2^53-1, so negation is exact.
 * Time and player id break ties the same way on either order (docs/ordering.md).
 *
 * Each board also lists, per window, the periods that have a rank set, ascending: the sets
 * live in a hash map (no order), and eviction (evict.c) needs the oldest one; the list stays
 * short (the kept periods, plus a backlog being evicted). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "shard_int.h"

void boards__init(struct boards *b, struct rankidx_names resolver)
{
    strmap_init(&b->by_id);
    b->resolver = resolver;
}

static void boards__free_set(struct rankset *rs)
{
    size_t pos = 0;
    struct strmap_slot *sl;
    rankidx_free(rs->all);
    while ((sl = strmap_next(&rs->guilds, &pos)) != NULL) {
        rankidx_free(sl->val);
    }
    strmap_free(&rs->guilds);
    free(rs->pending);
    free(rs);
}

void boards__free(struct boards *b)
{
    size_t pos = 0, pos2;
    struct strmap_slot *sl, *sl2;
    while ((sl = strmap_next(&b->by_id, &pos)) != NULL) {
        struct board *bd = sl->val;
        pos2 = 0;
        while ((sl2 = strmap_next(&bd->sets, &pos2)) != NULL) {
            boards__free_set(sl2->val);
        }
        strmap_free(&bd->sets);
        for (int w = 0; w < TIMEFMT_NWINDOWS; w++) {
            free(bd->periods[w].v);
        }
        free(bd);
    }
    strmap_free(&b->by_id);
}

struct board *boards__get(const struct boards *b, const char *id, size_t len)
{
    return strmap_get(&b->by_id, id, len);
}

int boards__put(struct boards *b, const char *id, size_t len, struct board **out)
{
    struct board *bd = boards__get(b, id, len);
    if (bd == NULL) {
        if (len > VALID_ID_MAX || (bd = calloc(1, sizeof *bd)) == NULL) {
            return LR_ENOMEM;
        }
        memcpy(bd->id, id, len);
        strmap_init(&bd->sets);
        bd->keep = CMD_KEEP_PERIODS_DEFAULT;
        for (int w = 0; w < TIMEFMT_NWINDOWS; w++) {
            bd->floor[w] = INT64_MIN;
        }
        if (strmap_put(&b->by_id, id, len, bd) != 0) {
            free(bd);
            return LR_ENOMEM;
        }
    }
    *out = bd;
    return 0;
}

static void boards__set_key(unsigned char k[9], enum timefmt_window w, int64_t period)
{
    k[0] = (unsigned char)w;
    memcpy(k + 1, &period, 8);
}

/* Position of @period in @p: where it is, or where it would go. */
static uint32_t boards__periods_find(const struct board_periods *p, int64_t period)
{
    uint32_t lo = 0, hi = p->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (p->v[mid] < period) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

/* Insert @period (absent) into @p. New periods are almost always the newest, so the move is
 * almost always empty. */
static int boards__periods_add(struct board_periods *p, int64_t period)
{
    if (p->n == p->cap) {
        uint32_t ncap = p->cap ? p->cap * 2 : 4;
        int64_t *nv = realloc(p->v, ncap * sizeof *nv);
        if (nv == NULL) {
            return LR_ENOMEM;
        }
        p->v = nv;
        p->cap = ncap;
    }
    uint32_t i = boards__periods_find(p, period);
    memmove(p->v + i + 1, p->v + i, (p->n - i) * sizeof *p->v);
    p->v[i] = period;
    p->n++;
    return 0;
}

static void boards__periods_del(struct board_periods *p, int64_t period)
{
    uint32_t i = boards__periods_find(p, period);
    if (i < p->n && p->v[i] == period) {
        memmove(p->v + i, p->v + i + 1, (p->n - i - 1) * sizeof *p->v);
        p->n--;
    }
}

struct rankset *boards__set(struct boards *b, struct board *bd, enum timefmt_window w,
                            int64_t period, int create)
{
    unsigned char k[9];
    boards__set_key(k, w, period);
    struct rankset *rs = strmap_get(&bd->sets, k, sizeof k);
    if (rs || !create) {
        return rs;
    }
    if ((rs = calloc(1, sizeof *rs)) == NULL) {
        return NULL;
    }
    rs->window = w;
    rs->period = period;
    strmap_init(&rs->guilds);
    if (rankidx_new(&b->resolver, b->pool, &rs->all) != 0) {
        free(rs);
        return NULL;
    }
    if (boards__periods_add(&bd->periods[w], period) != 0) {
        rankidx_free(rs->all);
        free(rs);
        return NULL;
    }
    if (strmap_put(&bd->sets, k, sizeof k, rs) != 0) {
        boards__periods_del(&bd->periods[w], period);
        rankidx_free(rs->all);
        free(rs);
        return NULL;
    }
    return rs;
}

void boards__drop(struct board *bd, struct rankset *rs)
{
    unsigned char k[9];
    boards__set_key(k, rs->window, rs->period);
    strmap_del(&bd->sets, k, sizeof k);
    boards__periods_del(&bd->periods[rs->window], rs->period);
    boards__free_set(rs);
}

struct rankset *boards__oldest(struct boards *b, struct board *bd, enum timefmt_window w)
{
    const struct board_periods *p = &bd->periods[w];
    return p->n ? boards__set(b, bd, w, p->v[0], 0) : NULL;
}

struct rankidx *boards__guild(struct boards *b, struct rankset *rs, const char *guild, int create)
{
    size_t len = strlen(guild);
    struct rankidx *idx = strmap_get(&rs->guilds, guild, len);
    if (idx || !create) {
        return idx;
    }
    if (rankidx_new(&b->resolver, b->pool, &idx) != 0) {
        return NULL;
    }
    if (strmap_put(&rs->guilds, guild, len, idx) != 0) {
        rankidx_free(idx);
        return NULL;
    }
    return idx;
}

size_t boards__memory(const struct boards *b)
{
    size_t total = 0, pos = 0, pos2, pos3;
    struct strmap_slot *sl, *sl2, *sl3;
    while ((sl = strmap_next(&b->by_id, &pos)) != NULL) {
        struct board *bd = sl->val;
        pos2 = 0;
        while ((sl2 = strmap_next(&bd->sets, &pos2)) != NULL) {
            struct rankset *rs = sl2->val;
            total += rankidx_memory(rs->all);
            pos3 = 0;
            while ((sl3 = strmap_next(&rs->guilds, &pos3)) != NULL) {
                total += rankidx_memory(sl3->val);
            }
        }
    }
    return total;
}

struct rankkey boards__key(const struct board *bd, int64_t score, int64_t sub, int64_t t,
                           uint32_t pid)
{
    struct rankkey k = {0};
    rankkey_fold(&k, bd->order == CMD_ORDER_DESC, score, sub, t);
    k.pid = pid;
    return k;
}
