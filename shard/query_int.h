/* shard/query_int.h — internals of the query files: the read in progress and the helpers
 * shared by board reads (query.c) and player, catalog and statistics reads
 * (query_player.c). */
#ifndef LAUREL_QUERY_INT_H
#define LAUREL_QUERY_INT_H

#include "shard_int.h"

struct query {
    struct shard *s;
    const struct shard_query *q;
    msgpack_packer pk;
    char *errmsg;
};

#define QPK (&x->pk)
#define QKEY(k) msgpack_pack_str_with_body(QPK, k, sizeof(k) - 1)

/* The ranking a board query reads: board, rank set (may be NULL: nobody yet) and index. */
struct query__scope {
    struct board *bd;
    struct rankset *rs;
    struct rankidx *idx;
    enum timefmt_window window;
    int64_t period;
};

/* Walk the records of @db whose keys start with @prefix, calling @fn until it returns nonzero
 * (1 = stop, else an error). */
typedef int (*query__walk_fn)(struct query *x, const MDB_val *k, const MDB_val *v, void *ctx);

int query__walk(struct query *x, enum store_db db, const struct key *prefix,
                const struct key *start, query__walk_fn fn, void *ctx);

double query__round2(double v);
int query__player(struct query *x, struct lr_str id, struct rec_player *p);
/* A paged player read's player (q->player_id) and page size (q->limit, 0: 50): 0, or
 * LR_ENOTFOUND / LR_EINVAL with the sentence. */
int query__page(struct query *x, struct rec_player *p, uint32_t *limit);
int query__game(struct query *x, struct lr_str id, struct rec_game *g);
/* Stored score of @pid on the scope's board, window and period. */
int query__score(struct query *x, const struct query__scope *sc, uint32_t pid, struct rec_score *r);

/* One function per read of SHARD_QUERIES. */
#define QUERY__DECL(NAME, name) int query__##name(struct query *x);
SHARD_QUERIES(QUERY__DECL)
#undef QUERY__DECL

#endif
