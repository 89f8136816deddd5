/* proto/proto.c — framing and codecs of the replica RPC (see proto.h). Every decoder here
 * faces the network: it checks types, counts and bounds and returns an error, never asserts. */
#include "proto.h"

#include <stdlib.h>
#include <string.h>

#include "../lib/err.h"
#include "../shard/mp.h"

const char *proto_op_name(int op)
{
    switch (op) {
#define PROTO__NAME(code, NAME, name, flags)                                                       \
    case code: return #name;
        PROTO_OPS(PROTO__NAME)
#undef PROTO__NAME
    default: return NULL;
    }
}

unsigned proto_op_flags(int op)
{
    switch (op) {
#define PROTO__FLAGS(code, NAME, name, flags)                                                      \
    case code: return (unsigned)(flags);
        PROTO_OPS(PROTO__FLAGS)
#undef PROTO__FLAGS
    default: return 0;
    }
}

void proto_reader_init(struct proto_reader *r)
{
    memset(r, 0, sizeof *r);
}

void proto_reader_free(struct proto_reader *r)
{
    free(r->buf);
    proto_reader_init(r);
}

int proto_reader_feed(struct proto_reader *r, const char *p, size_t n)
{
    if (n == 0) { /* libuv's EAGAIN: a fresh reader has no buffer, and memcpy to NULL is UB */
        return 0;
    }
    if (r->off > 0 && r->off == r->len) {
        r->off = r->len = 0;
    }
    if (r->len + n > r->cap) {
        if (r->off > 0) { /* slide the unread tail down before growing */
            memmove(r->buf, r->buf + r->off, r->len - r->off);
            r->len -= r->off;
            r->off = 0;
        }
        size_t ncap = r->cap ? r->cap : 4096;
        while (ncap < r->len + n) {
            ncap *= 2;
        }
        if (ncap != r->cap) {
            char *b = realloc(r->buf, ncap);
            if (b == NULL) {
                return LR_ENOMEM;
            }
            r->buf = b;
            r->cap = ncap;
        }
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    return 0;
}

int proto_reader_next(struct proto_reader *r, const char **p, size_t *n)
{
    size_t avail = r->len - r->off;
    if (avail < 4) {
        return 0;
    }
    const unsigned char *h = (const unsigned char *)r->buf + r->off;
    uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (len == 0 || len > PROTO_FRAME_MAX) {
        return LR_ETOOBIG;
    }
    if (avail < 4 + (size_t)len) {
        return 0;
    }
    *p = r->buf + r->off + 4;
    *n = len;
    r->off += 4 + (size_t)len;
    return 1;
}

void proto_frame_begin(msgpack_sbuffer *sb, size_t *mark)
{
    *mark = sb->size;
    msgpack_sbuffer_write(sb, "\0\0\0\0", 4);
}

void proto_frame_end(msgpack_sbuffer *sb, size_t mark)
{
    size_t len = sb->size - mark - 4;
    unsigned char *h = (unsigned char *)sb->data + mark;
    h[0] = (unsigned char)(len >> 24);
    h[1] = (unsigned char)(len >> 16);
    h[2] = (unsigned char)(len >> 8);
    h[3] = (unsigned char)len;
}

int proto_unpack(const char *p, size_t n, msgpack_unpacked *up)
{
    struct mp r;
    size_t off = 0;
    mp_init(&r, p, n);
    mp_skip(&r);
    if (!mp_done(&r)) {
        return LR_EMALFORMED;
    }
    if (msgpack_unpack_next(up, p, n, &off) != MSGPACK_UNPACK_SUCCESS || off != n) {
        return LR_EMALFORMED;
    }
    return 0;
}

int proto_obj_i64(const msgpack_object *o, int64_t *v)
{
    if (o == NULL) { /* a key absent from a peer's map (proto_map_get's NULL) */
        return LR_EINVAL;
    }
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX) {
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return LR_EINVAL;
}

int proto_msg_decode(const msgpack_object *o, struct proto_msg *m)
{
    int64_t ver, id, op;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4 ||
        proto_obj_i64(&o->via.array.ptr[0], &ver) || proto_obj_i64(&o->via.array.ptr[1], &id) ||
        proto_obj_i64(&o->via.array.ptr[2], &op) || op < 0 || op > 1000) {
        return LR_EMALFORMED;
    }
    if (ver != PROTO_VERSION) {
        return LR_EVERSION;
    }
    m->id = (uint64_t)id;
    m->op_or_code = (int)op;
    m->body = &o->via.array.ptr[3];
    return 0;
}

void proto_msg_begin(msgpack_packer *pk, uint64_t id, int op_or_code)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_int64(pk, PROTO_VERSION);
    msgpack_pack_uint64(pk, id);
    msgpack_pack_int64(pk, op_or_code);
}

void proto_pack_key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
}

const msgpack_object *proto_map_get(const msgpack_object *o, const char *key)
{
    size_t kl = strlen(key);
    if (o->type != MSGPACK_OBJECT_MAP) {
        return NULL;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            memcmp(k->via.str.ptr, key, kl) == 0) {
            return &o->via.map.ptr[i].val;
        }
    }
    return NULL;
}

/* ---- queries -------------------------------------------------------------------------------- */

static void proto__kv_str(msgpack_packer *pk, const char *k, struct lr_str v, uint32_t *n)
{
    if (v.len) {
        proto_pack_key(pk, k);
        msgpack_pack_str_with_body(pk, v.p, v.len);
        (*n)++;
    }
}

static void proto__kv_i64(msgpack_packer *pk, const char *k, int64_t v, uint32_t *n)
{
    if (v) {
        proto_pack_key(pk, k);
        msgpack_pack_int64(pk, v);
        (*n)++;
    }
}

/* The encoder runs twice: once to count the keys (pk NULL-safe via a counting packer is not
 * available in msgpack-c), so count first with the same predicates. */
static uint32_t proto__query_count(const struct shard_query *q, int stale)
{
    uint32_t n = 2; /* type, window */
    n += q->player_id.len > 0;
    n += q->game_id.len > 0;
    n += q->board_id.len > 0;
    n += q->achievement_id.len > 0;
    n += q->has_period != 0;
    n += q->guild.len > 0;
    n += q->limit != 0;
    n += q->cursor.len > 0;
    n += q->around != 0;
    n += q->nids > 0;
    n += q->nprobes > 0;
    n += q->days != 0;
    n += q->admin != 0;
    n += q->pending != 0;
    n += q->now_ms != 0;
    n += stale != 0;
    return n;
}

void proto_query_encode(msgpack_packer *pk, const struct shard_query *q, int stale)
{
    uint32_t n = 0, expect = proto__query_count(q, stale);
    msgpack_pack_map(pk, expect);
    proto_pack_key(pk, "type");
    msgpack_pack_int64(pk, q->type);
    proto_pack_key(pk, "window");
    msgpack_pack_int64(pk, q->window);
    n += 2;
    proto__kv_str(pk, "player_id", q->player_id, &n);
    proto__kv_str(pk, "game_id", q->game_id, &n);
    proto__kv_str(pk, "board_id", q->board_id, &n);
    proto__kv_str(pk, "achievement_id", q->achievement_id, &n);
    if (q->has_period) {
        proto_pack_key(pk, "period");
        msgpack_pack_int64(pk, q->period);
        n++;
    }
    proto__kv_str(pk, "guild", q->guild, &n);
    proto__kv_i64(pk, "limit", q->limit, &n);
    proto__kv_str(pk, "cursor", q->cursor, &n);
    proto__kv_i64(pk, "around", q->around, &n);
    if (q->nids) {
        proto_pack_key(pk, "ids");
        msgpack_pack_array(pk, q->nids);
        for (uint32_t i = 0; i < q->nids; i++) {
            msgpack_pack_str_with_body(pk, q->ids[i].p, q->ids[i].len);
        }
        n++;
    }
    if (q->nprobes) {
        proto_pack_key(pk, "probes");
        msgpack_pack_array(pk, q->nprobes);
        for (uint32_t i = 0; i < q->nprobes; i++) {
            msgpack_pack_array(pk, 4);
            msgpack_pack_int64(pk, q->probes[i].score);
            msgpack_pack_int64(pk, q->probes[i].subscore);
            msgpack_pack_int64(pk, q->probes[i].updated_ms);
            msgpack_pack_str_with_body(pk, q->probes[i].player_id.p, q->probes[i].player_id.len);
        }
        n++;
    }
    proto__kv_i64(pk, "days", q->days, &n);
    if (q->admin) {
        proto_pack_key(pk, "admin");
        msgpack_pack_true(pk);
        n++;
    }
    if (q->pending) {
        proto_pack_key(pk, "pending");
        msgpack_pack_true(pk);
        n++;
    }
    proto__kv_i64(pk, "now_ms", q->now_ms, &n);
    if (stale) {
        proto_pack_key(pk, "stale");
        msgpack_pack_true(pk);
        n++;
    }
    (void)n; /* equal to expect by construction; the decoder checks the shape anyway */
}

static int proto__str(const msgpack_object *o, struct lr_str *s, uint32_t max)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max) {
        return LR_EINVAL;
    }
    s->p = o->via.str.ptr;
    s->len = o->via.str.size;
    return 0;
}

static int proto__u32(const msgpack_object *o, uint32_t *v, uint32_t max)
{
    int64_t x;
    if (proto_obj_i64(o, &x) || x < 0 || x > max) {
        return LR_EINVAL;
    }
    *v = (uint32_t)x;
    return 0;
}

int proto_query_decode(const msgpack_object *o, struct shard_query *q, int *stale, char *errmsg)
{
    memset(q, 0, sizeof *q);
    *stale = 0;
    if (o->type != MSGPACK_OBJECT_MAP) {
        return errmsg_set(errmsg, LR_EINVAL, "query: args must be a map");
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        int64_t x = 0;
        int rv = 0;
        if (k->type != MSGPACK_OBJECT_STR) {
            return errmsg_set(errmsg, LR_EINVAL, "query: keys must be strings");
        }
#define KEY(s) (k->via.str.size == sizeof(s) - 1 && memcmp(k->via.str.ptr, s, sizeof(s) - 1) == 0)
        if (KEY("type")) {
            rv = proto_obj_i64(v, &x) || x < 0 || x >= SHARD_Q__END;
            q->type = (enum shard_qtype)x;
        } else if (KEY("window")) {
            rv = proto_obj_i64(v, &x) || x < 0 || x >= TIMEFMT_NWINDOWS;
            q->window = (enum timefmt_window)x;
        } else if (KEY("player_id")) {
            rv = proto__str(v, &q->player_id, VALID_ID_MAX);
        } else if (KEY("game_id")) {
            rv = proto__str(v, &q->game_id, VALID_GAME_ID_MAX);
        } else if (KEY("board_id")) {
            rv = proto__str(v, &q->board_id, VALID_ID_MAX);
        } else if (KEY("achievement_id")) {
            rv = proto__str(v, &q->achievement_id, VALID_ID_MAX);
        } else if (KEY("period")) {
            rv = proto_obj_i64(v, &q->period);
            q->has_period = 1;
        } else if (KEY("guild")) {
            rv = proto__str(v, &q->guild, VALID_ID_MAX);
        } else if (KEY("limit")) {
            rv = proto__u32(v, &q->limit, SHARD_PAGE_MAX);
        } else if (KEY("cursor")) {
            rv = proto__str(v, &q->cursor, 256);
        } else if (KEY("around")) {
            rv = proto__u32(v, &q->around, 50);
        } else if (KEY("days")) {
            rv = proto__u32(v, &q->days, 90);
        } else if (KEY("now_ms")) {
            rv = proto_obj_i64(v, &q->now_ms);
        } else if (KEY("admin")) {
            rv = v->type != MSGPACK_OBJECT_BOOLEAN;
            q->admin = !rv && v->via.boolean;
        } else if (KEY("pending")) {
            rv = v->type != MSGPACK_OBJECT_BOOLEAN;
            q->pending = !rv && v->via.boolean;
        } else if (KEY("stale")) {
            rv = v->type != MSGPACK_OBJECT_BOOLEAN;
            *stale = !rv && v->via.boolean;
        } else if (KEY("ids")) {
            rv = v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > SHARD_FRIENDS_MAX;
            for (uint32_t j = 0; !rv && j < v->via.array.size; j++) {
                rv = proto__str(&v->via.array.ptr[j], &q->ids[j], VALID_ID_MAX);
            }
            q->nids = rv ? 0 : v->via.array.size;
        } else if (KEY("probes")) {
            rv = v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > SHARD_FRIENDS_MAX;
            for (uint32_t j = 0; !rv && j < v->via.array.size; j++) {
                const msgpack_object *p = &v->via.array.ptr[j];
                rv = p->type != MSGPACK_OBJECT_ARRAY || p->via.array.size != 4 ||
                     proto_obj_i64(&p->via.array.ptr[0], &q->probes[j].score) ||
                     proto_obj_i64(&p->via.array.ptr[1], &q->probes[j].subscore) ||
                     proto_obj_i64(&p->via.array.ptr[2], &q->probes[j].updated_ms) ||
                     proto__str(&p->via.array.ptr[3], &q->probes[j].player_id, VALID_ID_MAX);
            }
            q->nprobes = rv ? 0 : v->via.array.size;
        }
        /* Unknown keys are ignored: newer routers may send fields older nodes do not know. */
#undef KEY
        if (rv) {
            return errmsg_set(errmsg, LR_EINVAL, "query: bad value for %.*s", (int)k->via.str.size,
                              k->via.str.ptr);
        }
    }
    return 0;
}
