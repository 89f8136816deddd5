/* shard/audit.c — the audit trail: every player write the region applied, accepted or refused,
 * with who sent it (API.md, "Audit"; docs/api.md; docs/data-layout.md, "audit").
 *
 * Apply records one entry per audited command (cmd.h, CMD_AUDITED) once its handler has
 * answered, in the same transaction as the command's effects. The key is (pid, ~raft index,
 * ~position in the entry): a player's entries lie together, newest first, and a key is never
 * written twice because an index is applied once. A replayed idempotent request records
 * nothing (it changed nothing and answered a stored result); a command whose player does not
 * exist has no trail to join and records nothing either.
 *
 * The record keeps the command itself, re-encoded without its origin, rather than the JSON
 * text the router received: raft entries stay as they were (the hot path carries no copy of
 * each body), the size is bounded by the command's own field bounds (about 600 bytes for the
 * largest, a score with full metadata), and the trail shows exactly what the region acted on.
 * A read renders the fields under the body's names.
 *
 * Retention: a second table indexes the entries by their stamped time. Each raft entry purges,
 * before its first command, up to a bounded number of entries stamped more than audit_days
 * before that command's stamp: the stamp and the replicated retention (CMD_AUDIT_DAYS), never
 * a replica's clock or flags, so every replica deletes the same records at the same index and
 * the digest stays the same everywhere. */
#include <string.h>

#include "apply_int.h"
#include "cursor.h"
#include "mp.h"
#include "query_int.h"

#define AUDIT__DAY_MS 86400000LL
#define AUDIT__KEY_LEN 16 /* pid, ~index, ~position */

static void audit__key(struct key *k, uint32_t pid, uint64_t index, uint32_t pos)
{
    key__init(k);
    key__u32(k, pid);
    key__u64(k, ~index);
    key__u32(k, ~pos);
}

/* ---- apply ----------------------------------------------------------------------------- */

int audit__record(struct apply *a, const struct cmd *c)
{
    const struct lr_str *player = cmd_audit_player(c);
    struct shard *s = a->s;
    struct rec_player p;
    struct key k, ek;
    int rv;
    if (player == NULL) {
        return 0;
    }
    /* The handler may have looked the player up (its strings are stale by now; the pid is
     * not); a player put that created the player has not. */
    if (a->have_player) {
        p.pid = a->player.pid;
    } else if ((rv = shard__player(s, *player, &p)) != 0) {
        return rv == LR_ENOTFOUND ? 0 : rv;
    }
    struct cmd bare = *c;
    bare.origin.key = CMD_KEY_NONE; /* kept beside it, in fields of its own */
    /* Record: [ver, status, key class, source, [code, ts, fields...]] */
    apply__rec_begin(a, 4);
    msgpack_pack_int64(RPK, a->status);
    msgpack_pack_int64(RPK, c->origin.key);
    rec__pack_str(RPK, c->origin.source);
    if ((rv = cmd_encode(RPK, &bare)) != 0) {
        return rv;
    }
    audit__key(&k, p.pid, a->index, a->i);
    if ((rv = store_put_known(s->st, STORE_AUDIT, k.b, k.len, s->rbuf.data, s->rbuf.size, 0, 0)) !=
        0) {
        return rv;
    }
    key__init(&ek);
    key__i64(&ek, c->ts);
    key__str(&ek, (struct lr_str){(const char *)k.b, (uint32_t)k.len});
    return store_put_known(s->st, STORE_AUDITEXP, ek.b, ek.len, "", 0, 0, 0);
}

/* apply__expire's drop for the trail: @k is the entry's key, which must be there. */
static int audit__drop(struct shard *s, int64_t stamp, const unsigned char *k, size_t klen)
{
    (void)stamp;
    if (klen != AUDIT__KEY_LEN) {
        return LR_ECORRUPT;
    }
    int rv = store_del(s->st, STORE_AUDIT, k, klen);
    return rv == LR_ENOTFOUND ? LR_ECORRUPT : rv; /* the index named a missing entry */
}

int audit__purge(struct shard *s, int64_t now, uint32_t max)
{
    return apply__expire(s, STORE_AUDITEXP, now - (int64_t)s->audit_days * AUDIT__DAY_MS, max,
                         audit__drop);
}

int apply__audit_days(struct apply *a, const struct cmd_audit_days *c)
{
    struct shard *s = a->s;
    if ((uint32_t)c->days != s->audit_days) {
        int rv = shard__meta_put_u64(s, "audit_days", (uint64_t)c->days);
        if (rv != 0) {
            return rv;
        }
        s->audit_days = (uint32_t)c->days;
    }
    apply__reset_out(a);
    msgpack_pack_map(PK, 1);
    PK_KEY("audit_days");
    msgpack_pack_uint32(PK, s->audit_days);
    apply__answer(a, 200);
    return 0;
}

/* ---- the read -------------------------------------------------------------------------- */

/* A request's fields under the body's names. Empty optional strings (guild, metadata, an
 * idempotency key) read as null, metadata as BIN of its JSON text (query.c's convention, so a
 * router embeds it as an object). Only the kinds of CMD_AUDITED's fields are here: a new
 * audited command with another kind fails to compile until its rendering is written. */
#define audit__pack_ID(pk, v) rec__pack_str(pk, v)
#define audit__pack_TEXT(pk, v) rec__pack_str(pk, v)
#define audit__pack_OPTID(pk, v) ((v).len ? rec__pack_str(pk, v) : msgpack_pack_nil(pk))
#define audit__pack_IDEM(pk, v) ((v).len ? rec__pack_str(pk, v) : msgpack_pack_nil(pk))
#define audit__pack_META(pk, v)                                                                    \
    ((v).len ? msgpack_pack_bin_with_body(pk, (v).p, (v).len) : msgpack_pack_nil(pk))
#define audit__pack_I64(pk, v) msgpack_pack_int64(pk, v)

#define AUDIT__COUNT(kind, fname, a, b) +1
#define AUDIT__FIELD(kind, fname, a, b)                                                            \
    msgpack_pack_str_with_body(pk, #fname, sizeof(#fname) - 1);                                    \
    audit__pack_##kind(pk, f->fname);

static void audit__pack_request(msgpack_packer *pk, const struct cmd *c)
{
    switch (c->type) {
#define AUDIT__CASE(NAME, name, action)                                                            \
    case CMD_##NAME: {                                                                             \
        const struct cmd_##name *f = &c->u.name;                                                   \
        msgpack_pack_map(pk, 0 CMD_##NAME(AUDIT__COUNT));                                          \
        CMD_##NAME(AUDIT__FIELD) return;                                                           \
    }
        CMD_AUDITED(AUDIT__CASE)
#undef AUDIT__CASE
    default: msgpack_pack_map(pk, 0); /* audit__record records only CMD_AUDITED */
    }
}

#define AUDIT__PKEY(pk, k) msgpack_pack_str_with_body(pk, k, sizeof(k) - 1)

/* Pack the entry under key @k (AUDIT__KEY_LEN bytes) with record @v as an API.md item. */
static int audit__pack_item(struct query *x, msgpack_packer *pk, const MDB_val *k, const MDB_val *v)
{
    msgpack_unpacked up;
    struct cmd c;
    struct mp r;
    char msg[LR_ERRMSG_SIZE];
    int rv = LR_ECORRUPT;
    uint64_t index = ~key__get_u64((const unsigned char *)k->mv_data + 4);
    mp_init(&r, v->mv_data, v->mv_size);
    uint32_t n = mp_array(&r);
    int64_t ver = mp_i64(&r), status = mp_i64(&r), key = mp_i64(&r);
    struct lr_str source = mp_str(&r);
    if (r.err || n != 5 || ver != REC_VERSION) {
        return LR_ECORRUPT;
    }
    /* The command, the record's last element, goes through the one decoder of commands. */
    msgpack_unpacked_init(&up);
    size_t off = 0, len = (size_t)(r.end - r.p);
    if (msgpack_unpack_next(&up, (const char *)r.p, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        off != len || cmd_decode(&up.data, &c, msg) != 0 || cmd_audit_action(c.type) == NULL) {
        goto out;
    }
    const char *kname = cmd_key_name(key);
    msgpack_pack_map(pk, 8);
    AUDIT__PKEY(pk, "at");
    rec__pack_time(pk, c.ts);
    AUDIT__PKEY(pk, "region");
    rec__pack_cstr(pk, x->s->region);
    AUDIT__PKEY(pk, "index");
    msgpack_pack_uint64(pk, index);
    AUDIT__PKEY(pk, "action");
    rec__pack_cstr(pk, cmd_audit_action(c.type));
    AUDIT__PKEY(pk, "request");
    audit__pack_request(pk, &c);
    AUDIT__PKEY(pk, "status");
    msgpack_pack_int64(pk, status);
    /* Entries logged before origins existed carry neither: null, not a guess. */
    AUDIT__PKEY(pk, "key");
    kname ? rec__pack_cstr(pk, kname) : msgpack_pack_nil(pk);
    AUDIT__PKEY(pk, "source");
    source.len ? rec__pack_str(pk, source) : msgpack_pack_nil(pk);
    rv = 0;
out:
    msgpack_unpacked_destroy(&up);
    return rv;
}

struct audit__page {
    msgpack_packer pk; /* the items, packed into @items */
    msgpack_sbuffer items;
    uint32_t limit, n;
    uint64_t last_index;
    uint32_t last_pos;
    int more;
};

static int audit__walk(struct query *x, const MDB_val *k, const MDB_val *v, void *ctx)
{
    struct audit__page *pg = ctx;
    if (k->mv_size != AUDIT__KEY_LEN) {
        return LR_ECORRUPT;
    }
    if (pg->n == pg->limit) {
        pg->more = 1;
        return 1;
    }
    int rv = audit__pack_item(x, &pg->pk, k, v);
    if (rv != 0) {
        return rv;
    }
    pg->n++;
    pg->last_index = ~key__get_u64((const unsigned char *)k->mv_data + 4);
    pg->last_pos = ~key__get_u32((const unsigned char *)k->mv_data + 12);
    return 0;
}

int query__audit(struct query *x)
{
    const struct shard_query *q = x->q;
    struct rec_player p;
    struct key pre, start;
    uint64_t index = 0;
    uint32_t pos = 0;
    int rv;
    uint32_t limit;
    if ((rv = query__page(x, &p, &limit)) != 0) {
        return rv;
    }
    if (q->cursor.len && cursor_decode_pos(q->cursor.p, q->cursor.len, &index, &pos) != 0) {
        return errmsg_set(x->errmsg, LR_EINVAL, "cursor is not valid");
    }
    key__init(&pre);
    key__u32(&pre, p.pid);
    if (q->cursor.len) {
        audit__key(&start, p.pid, index, pos);
        key__str(&start, (struct lr_str){"", 1}); /* the least key strictly after the cursor's */
    }
    struct audit__page pg = {.limit = limit};
    msgpack_sbuffer_init(&pg.items);
    msgpack_packer_init(&pg.pk, &pg.items, msgpack_sbuffer_write);
    rv = query__walk(x, STORE_AUDIT, &pre, q->cursor.len ? &start : NULL, audit__walk, &pg);
    if (rv == 0) {
        msgpack_pack_map(QPK, 2);
        QKEY("items");
        msgpack_pack_array(QPK, pg.n);
        /* The items as packed: raw bytes through the answer's own writer. */
        if (pg.items.size && x->pk.callback(x->pk.data, pg.items.data, pg.items.size) != 0) {
            rv = LR_ENOMEM;
        }
    }
    if (rv == 0) {
        QKEY("next_cursor");
        if (pg.more) {
            char cur[CURSOR_MAX];
            cursor_encode_pos(pg.last_index, pg.last_pos, cur);
            rec__pack_cstr(QPK, cur);
        } else {
            msgpack_pack_nil(QPK);
        }
    }
    msgpack_sbuffer_destroy(&pg.items);
    return rv;
}
