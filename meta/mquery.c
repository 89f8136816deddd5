/* meta/mquery.c — the wire form of a meta query (meta.h, meta_query_encode/decode).
 *
 * A query travels as a msgpack map: {"type": "<name of a META_QUERIES row>", "player_id",
 * "tournament_id", "board_id", "after", "limit", "cycle", "stale"}, each key optional but
 * "type". The decoder is driven by one table of keys, so a key is declared once with its
 * kind and where it lands; it refuses unknown keys, wrong kinds and out-of-range numbers
 * with a sentence, and never allocates (strings borrow the object). */
#include <string.h>

#include "meta.h"

static const char *const meta__qnames[META_Q__END] = {
#define META__QNAME(NAME, name) [META_Q_##NAME] = #name,
    META_QUERIES(META__QNAME)
#undef META__QNAME
};

const char *meta_query_name(int type)
{
    return type >= 0 && type < META_Q__END ? meta__qnames[type] : NULL;
}

/* K(key, kind, field): STR into an lr_str of struct meta_query, U64/U32/I64 into a number. */
#define META__QKEYS(K)                                                                             \
    K(player_id, STR, player_id)                                                                   \
    K(tournament_id, STR, tournament_id)                                                           \
    K(board_id, STR, board_id)                                                                     \
    K(after, U64, after)                                                                           \
    K(limit, U32, limit)                                                                           \
    K(cycle, I64, cycle)

enum meta__qkind { META__K_STR, META__K_U64, META__K_U32, META__K_I64 };

static const struct meta__qkey {
    const char *key;
    enum meta__qkind kind;
    size_t off;
} meta__qkeys[] = {
#define META__QKEY(key, kind, field) {#key, META__K_##kind, offsetof(struct meta_query, field)},
    META__QKEYS(META__QKEY)
#undef META__QKEY
};

#define META__NQKEYS (sizeof meta__qkeys / sizeof meta__qkeys[0])

static void meta__pack_str(msgpack_packer *pk, const char *p, size_t len)
{
    msgpack_pack_str_with_body(pk, p, len);
}

void meta_query_encode(msgpack_packer *pk, const struct meta_query *q, int stale)
{
    unsigned n = 1 + (stale != 0);
    for (size_t i = 0; i < META__NQKEYS; i++) {
        const struct meta__qkey *k = &meta__qkeys[i];
        const char *f = (const char *)q + k->off;
        n += k->kind != META__K_STR || ((const struct lr_str *)f)->len > 0;
    }
    msgpack_pack_map(pk, n);
    meta__pack_str(pk, "type", 4);
    const char *name = meta_query_name(q->type);
    meta__pack_str(pk, name ? name : "", name ? strlen(name) : 0);
    if (stale) {
        meta__pack_str(pk, "stale", 5);
        msgpack_pack_true(pk);
    }
    for (size_t i = 0; i < META__NQKEYS; i++) {
        const struct meta__qkey *k = &meta__qkeys[i];
        const char *f = (const char *)q + k->off;
        if (k->kind == META__K_STR && ((const struct lr_str *)f)->len == 0) {
            continue;
        }
        meta__pack_str(pk, k->key, strlen(k->key));
        switch (k->kind) {
        case META__K_STR: {
            const struct lr_str *s = (const struct lr_str *)f;
            meta__pack_str(pk, s->p, s->len);
            break;
        }
        case META__K_U64: msgpack_pack_uint64(pk, *(const uint64_t *)f); break;
        case META__K_U32: msgpack_pack_uint32(pk, *(const uint32_t *)f); break;
        case META__K_I64: msgpack_pack_int64(pk, *(const int64_t *)f); break;
        }
    }
}

static int meta__str_is(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

/* Store @v into the field of @k. @return 0, or -1 when @v is not of the key's kind. */
static int meta__qset(const struct meta__qkey *k, const msgpack_object *v, struct meta_query *q)
{
    char *f = (char *)q + k->off;
    int neg = v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    if (k->kind == META__K_STR) {
        if (v->type != MSGPACK_OBJECT_STR || v->via.str.size > 64) {
            return -1;
        }
        *(struct lr_str *)f = (struct lr_str){v->via.str.ptr, v->via.str.size};
        return 0;
    }
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER && !neg) {
        return -1;
    }
    switch (k->kind) {
    case META__K_U64:
        if (neg) {
            return -1;
        }
        *(uint64_t *)f = v->via.u64;
        return 0;
    case META__K_U32:
        if (neg || v->via.u64 > UINT32_MAX) {
            return -1;
        }
        *(uint32_t *)f = (uint32_t)v->via.u64;
        return 0;
    case META__K_I64:
        if (!neg && v->via.u64 > INT64_MAX) {
            return -1;
        }
        *(int64_t *)f = neg ? v->via.i64 : (int64_t)v->via.u64;
        return 0;
    case META__K_STR: break;
    }
    return -1;
}

int meta_query_decode(const msgpack_object *o, struct meta_query *q, int *stale, char *errmsg)
{
    int have_type = 0;
    memset(q, 0, sizeof *q);
    *stale = 0;
    if (o->type != MSGPACK_OBJECT_MAP) {
        return errmsg_set(errmsg, LR_EINVAL, "meta query: args must be a map");
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (meta__str_is(k, "type")) {
            for (int t = 0; t < META_Q__END && !have_type; t++) {
                if (meta__str_is(v, meta__qnames[t])) {
                    q->type = (enum meta_qtype)t;
                    have_type = 1;
                }
            }
            if (!have_type) {
                return errmsg_set(errmsg, LR_EINVAL, "meta query: unknown type");
            }
            continue;
        }
        if (meta__str_is(k, "stale")) {
            if (v->type != MSGPACK_OBJECT_BOOLEAN) {
                return errmsg_set(errmsg, LR_EINVAL, "meta query: stale must be a boolean");
            }
            *stale = v->via.boolean;
            continue;
        }
        size_t j = 0;
        while (j < META__NQKEYS && !meta__str_is(k, meta__qkeys[j].key)) {
            j++;
        }
        if (j == META__NQKEYS) {
            return errmsg_set(errmsg, LR_EINVAL, "meta query: unknown key");
        }
        if (meta__qset(&meta__qkeys[j], v, q) != 0) {
            return errmsg_set(errmsg, LR_EINVAL, "meta query: %s has the wrong type or range",
                              meta__qkeys[j].key);
        }
    }
    if (!have_type) {
        return errmsg_set(errmsg, LR_EINVAL, "meta query: type is required");
    }
    return 0;
}
