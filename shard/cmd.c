/* shard/cmd.c — codec of the command list in cmd.h, generated field by field.
 *
 * The decoder trusts nothing: every field is type-checked, every bound of API.md enforced, and
 * the array length must match the field list exactly, so a command of an unknown layout is
 * refused rather than half-read. */
#include "cmd.h"

#include <string.h>

#include "../lib/err.h"
#include "../lib/hash.h"
#include "mp.h"

/* ---- names and flags ------------------------------------------------------------------ */

const char *cmd_name(int type)
{
    switch (type) {
#define CMD__NAME(code, NAME, name, flags)                                                         \
    case code: return #name;
        CMD_LIST(CMD__NAME)
#undef CMD__NAME
    default: return NULL;
    }
}

unsigned cmd_flags(int type)
{
    switch (type) {
#define CMD__FLAGS(code, NAME, name, flags)                                                        \
    case code: return flags;
        CMD_LIST(CMD__FLAGS)
#undef CMD__FLAGS
    default: return 0;
    }
}

const char *cmd_audit_action(int type)
{
    switch (type) {
#define CMD__AUDIT_NAME(NAME, name, action)                                                        \
    case CMD_##NAME: return action;
        CMD_AUDITED(CMD__AUDIT_NAME)
#undef CMD__AUDIT_NAME
    default: return NULL;
    }
}

const struct lr_str *cmd_audit_player(const struct cmd *c)
{
    switch (c->type) {
#define CMD__AUDIT_PLAYER(NAME, name, action)                                                      \
    case CMD_##NAME: return &c->u.name.player_id;
        CMD_AUDITED(CMD__AUDIT_PLAYER)
#undef CMD__AUDIT_PLAYER
    default: return NULL;
    }
}

const char *cmd_key_name(int64_t key)
{
    switch (key) {
#define CMD__KEY_NAME(NAME, code, text)                                                            \
    case code: return text;
        CMD_KEYS(CMD__KEY_NAME)
#undef CMD__KEY_NAME
    default: return NULL;
    }
}

/* Where each catalog put keeps its version and its id; 0: not a catalog put. */
static const struct {
    size_t version, id;
} cmd__catalog[CMD__TYPE_END] = {
    [CMD_GAME_PUT] = {offsetof(struct cmd, u.game_put.version),
                      offsetof(struct cmd, u.game_put.game_id)},
    [CMD_ACH_PUT] = {offsetof(struct cmd, u.ach_put.version),
                     offsetof(struct cmd, u.ach_put.achievement_id)},
    [CMD_BOARD_PUT] = {offsetof(struct cmd, u.board_put.version),
                       offsetof(struct cmd, u.board_put.board_id)},
    [CMD_TOURNAMENT_PUT] = {offsetof(struct cmd, u.tournament_put.version),
                            offsetof(struct cmd, u.tournament_put.tournament_id)},
};

int64_t *cmd_catalog_version(struct cmd *c)
{
    if ((unsigned)c->type >= CMD__TYPE_END || cmd__catalog[c->type].version == 0) {
        return NULL;
    }
    return (int64_t *)((char *)c + cmd__catalog[c->type].version);
}

const struct lr_str *cmd_catalog_id(const struct cmd *c)
{
    if ((unsigned)c->type >= CMD__TYPE_END || cmd__catalog[c->type].id == 0) {
        return NULL;
    }
    return (const struct lr_str *)((const char *)c + cmd__catalog[c->type].id);
}

/* ---- encoding ------------------------------------------------------------------------- */

static int cmd__pack_str(msgpack_packer *pk, struct lr_str s)
{
    return msgpack_pack_str_with_body(pk, s.p, s.len);
}

#define cmd__enc_ID(pk, v) cmd__pack_str(pk, v)
#define cmd__enc_OPTID(pk, v) cmd__pack_str(pk, v)
#define cmd__enc_TEXT(pk, v) cmd__pack_str(pk, v)
#define cmd__enc_IDEM(pk, v) cmd__pack_str(pk, v)
#define cmd__enc_META(pk, v) cmd__pack_str(pk, v)
#define cmd__enc_I64(pk, v) msgpack_pack_int64(pk, v)
#define cmd__enc_BOOL(pk, v) ((v) ? msgpack_pack_true(pk) : msgpack_pack_false(pk))

static int cmd__enc_PRIZES(msgpack_packer *pk, const struct cmd_prizes *p)
{
    int rv = msgpack_pack_array(pk, p->n);
    for (uint32_t i = 0; rv == 0 && i < p->n; i++) {
        rv = msgpack_pack_array(pk, 3) || msgpack_pack_int64(pk, p->items[i].rank_from) ||
             msgpack_pack_int64(pk, p->items[i].rank_to) || cmd__pack_str(pk, p->items[i].reward);
    }
    return rv;
}
#define cmd__enc_PRIZES(pk, v) cmd__enc_PRIZES(pk, &(v))

#define CMD__COUNT(kind, fname, a, b) +1
#define CMD__ENC_FIELD(kind, fname, a, b) rv = rv || cmd__enc_##kind(pk, f->fname);

/* The origin after the fields: [key, source]. */
static int cmd__enc_origin(msgpack_packer *pk, const struct cmd_origin *o)
{
    return msgpack_pack_array(pk, 2) || msgpack_pack_int64(pk, o->key) ||
           cmd__pack_str(pk, o->source);
}

#define CMD__ENCODER(code, NAME, name, flags)                                                      \
    static int cmd__encode_##name(msgpack_packer *pk, int64_t ts, const struct cmd_##name *f,      \
                                  const struct cmd_origin *o)                                      \
    {                                                                                              \
        int with_origin = o->key != CMD_KEY_NONE;                                                  \
        int rv = msgpack_pack_array(pk, (uint32_t)(2 + with_origin CMD_##NAME(CMD__COUNT))) ||     \
                 msgpack_pack_int64(pk, code) || msgpack_pack_int64(pk, ts);                       \
        CMD_##NAME(CMD__ENC_FIELD) rv = rv || (with_origin && cmd__enc_origin(pk, o));             \
        return rv ? LR_ENOMEM : 0;                                                                 \
    }
CMD_LIST(CMD__ENCODER)
#undef CMD__ENCODER

int cmd_encode(msgpack_packer *pk, const struct cmd *c)
{
    switch (c->type) {
#define CMD__ENC_CASE(code, NAME, name, flags)                                                     \
    case CMD_##NAME: return cmd__encode_##name(pk, c->ts, &c->u.name, &c->origin);
        CMD_LIST(CMD__ENC_CASE)
#undef CMD__ENC_CASE
    case CMD__TYPE_END: break;
    }
    return LR_EINVAL;
}

int cmd_entry_begin(msgpack_packer *pk, uint32_t n)
{
    if (msgpack_pack_array(pk, 2) || msgpack_pack_int64(pk, CMD_ENTRY_VERSION) ||
        msgpack_pack_array(pk, n)) {
        return LR_ENOMEM;
    }
    return 0;
}

/* ---- decoding ------------------------------------------------------------------------- */

static int cmd__get_i64(const msgpack_object *o, int64_t *v)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            return LR_ERANGE;
        }
        *v = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *v = o->via.i64;
        return 0;
    }
    return LR_EMALFORMED;
}

static int cmd__get_str(const msgpack_object *o, struct lr_str *s)
{
    if (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN) {
        return LR_EMALFORMED;
    }
    s->p = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : o->via.bin.ptr;
    s->len = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
    return 0;
}

static int cmd__dec_ID(const msgpack_object *o, struct lr_str *v, int64_t a, int64_t b,
                       const char *fname, char *errmsg)
{
    (void)b;
    if (cmd__get_str(o, v) || !valid_id(v->p, v->len, (size_t)a)) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be 1 to %lld characters of [A-Za-z0-9_.-]",
                          fname, (long long)a);
    }
    return 0;
}

static int cmd__dec_OPTID(const msgpack_object *o, struct lr_str *v, int64_t a, int64_t b,
                          const char *fname, char *errmsg)
{
    if (cmd__get_str(o, v) == 0 && v->len == 0) {
        return 0;
    }
    return cmd__dec_ID(o, v, a, b, fname, errmsg);
}

static int cmd__dec_TEXT(const msgpack_object *o, struct lr_str *v, int64_t a, int64_t b,
                         const char *fname, char *errmsg)
{
    if (cmd__get_str(o, v) || !valid_text(v->p, v->len, (size_t)a, (size_t)b)) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be UTF-8 text of %lld to %lld characters",
                          fname, (long long)a, (long long)b);
    }
    return 0;
}

static int cmd__dec_IDEM(const msgpack_object *o, struct lr_str *v, int64_t a, int64_t b,
                         const char *fname, char *errmsg)
{
    (void)a;
    (void)b;
    if (cmd__get_str(o, v) || (v->len != 0 && !valid_idem(v->p, v->len))) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be 8 to 128 printable ASCII characters",
                          fname);
    }
    return 0;
}

static int cmd__dec_META(const msgpack_object *o, struct lr_str *v, int64_t a, int64_t b,
                         const char *fname, char *errmsg)
{
    (void)a;
    (void)b;
    if (cmd__get_str(o, v) || v->len > VALID_METADATA_MAX ||
        (v->len != 0 && (v->len < 2 || v->p[0] != '{' || v->p[v->len - 1] != '}'))) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be a JSON object of at most %d bytes", fname,
                          VALID_METADATA_MAX);
    }
    return 0;
}

static int cmd__dec_I64(const msgpack_object *o, int64_t *v, int64_t a, int64_t b,
                        const char *fname, char *errmsg)
{
    if (cmd__get_i64(o, v) || *v < a || *v > b) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be an integer in [%lld, %lld]", fname,
                          (long long)a, (long long)b);
    }
    return 0;
}

static int cmd__dec_BOOL(const msgpack_object *o, int *v, int64_t a, int64_t b, const char *fname,
                         char *errmsg)
{
    (void)a;
    (void)b;
    if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be a boolean", fname);
    }
    *v = o->via.boolean ? 1 : 0;
    return 0;
}

static int cmd__dec_PRIZES(const msgpack_object *o, struct cmd_prizes *v, int64_t a, int64_t b,
                           const char *fname, char *errmsg)
{
    (void)a;
    (void)b;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > CMD_PRIZES_MAX) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be a list of at most %d bands", fname,
                          CMD_PRIZES_MAX);
    }
    v->n = o->via.array.size;
    for (uint32_t i = 0; i < v->n; i++) {
        const msgpack_object *band = &o->via.array.ptr[i];
        struct cmd_prize *p = &v->items[i];
        if (band->type != MSGPACK_OBJECT_ARRAY || band->via.array.size != 3 ||
            cmd__get_i64(&band->via.array.ptr[0], &p->rank_from) ||
            cmd__get_i64(&band->via.array.ptr[1], &p->rank_to) ||
            cmd__get_str(&band->via.array.ptr[2], &p->reward) || p->rank_from < 1 ||
            p->rank_to < p->rank_from || p->rank_to > 1000000 ||
            !valid_text(p->reward.p, p->reward.len, 1, VALID_REWARD_MAX)) {
            return errmsg_set(errmsg, LR_EINVAL,
                              "%s[%u] must have 1 <= rank_from <= rank_to <= 1000000 and a "
                              "reward of 1 to %d characters",
                              fname, i, VALID_REWARD_MAX);
        }
    }
    return 0;
}

#define CMD__DEC_FIELD(kind, fname, a, b)                                                          \
    if ((rv = cmd__dec_##kind(&o[i++], &f->fname, a, b, #fname, errmsg)) != 0) {                   \
        return rv;                                                                                 \
    }

/* Source addresses are numeric IPv4 or IPv6 text, an IPv6 zone included. */
int cmd_source_valid(struct lr_str s)
{
    if (s.len > CMD_SOURCE_MAX) {
        return 0;
    }
    for (uint32_t i = 0; i < s.len; i++) {
        char ch = s.p[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              ch == '.' || ch == ':' || ch == '%' || ch == '_' || ch == '-')) {
            return 0;
        }
    }
    return 1;
}

/* The optional origin after a command's fields (cmd.h); absent when @o is NULL. */
static int cmd__dec_origin(const msgpack_object *o, struct cmd_origin *out, const char *name,
                           char *errmsg)
{
    out->key = CMD_KEY_NONE;
    out->source = (struct lr_str){"", 0};
    if (o == NULL) {
        return 0;
    }
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2 ||
        cmd__get_i64(&o->via.array.ptr[0], &out->key) || cmd_key_name(out->key) == NULL ||
        cmd__get_str(&o->via.array.ptr[1], &out->source) || !cmd_source_valid(out->source)) {
        return errmsg_set(errmsg, LR_EMALFORMED,
                          "%s: origin must be [key class 1 or 2, source address of at most %d "
                          "characters]",
                          name, CMD_SOURCE_MAX);
    }
    return 0;
}

#define CMD__DECODER(code, NAME, name, flags)                                                      \
    static int cmd__decode_##name(const msgpack_object *o, uint32_t n, struct cmd_##name *f,       \
                                  struct cmd_origin *origin, char *errmsg)                         \
    {                                                                                              \
        uint32_t i = 0;                                                                            \
        int rv;                                                                                    \
        if (n != (0 CMD_##NAME(CMD__COUNT)) && n != (1 CMD_##NAME(CMD__COUNT))) {                  \
            return errmsg_set(errmsg, LR_EMALFORMED, "%s: expected %d fields, got %u", #name,      \
                              0 CMD_##NAME(CMD__COUNT), n);                                        \
        }                                                                                          \
        CMD_##NAME(CMD__DEC_FIELD) return cmd__dec_origin(i < n ? &o[i] : NULL, origin, #name,     \
                                                          errmsg);                                 \
    }
CMD_LIST(CMD__DECODER)
#undef CMD__DECODER

int cmd_decode(const msgpack_object *obj, struct cmd *c, char *errmsg)
{
    int64_t code;
    if (obj->type != MSGPACK_OBJECT_ARRAY || obj->via.array.size < 2) {
        return errmsg_set(errmsg, LR_EMALFORMED, "command: not an array [code, ts, ...]");
    }
    const msgpack_object *o = obj->via.array.ptr;
    uint32_t n = obj->via.array.size - 2;
    if (cmd__get_i64(&o[0], &code) || cmd_name((int)code) == NULL || code != (int)code) {
        return errmsg_set(errmsg, LR_EVERSION, "command: unknown command code");
    }
    if (cmd__get_i64(&o[1], &c->ts) || c->ts < 0 || c->ts > 253402300799999LL) {
        return errmsg_set(errmsg, LR_EMALFORMED, "command: ts must be a time in ms");
    }
    c->type = (enum cmd_type)code;
    switch (c->type) {
#define CMD__DEC_CASE(code_, NAME, name, flags)                                                    \
    case CMD_##NAME: return cmd__decode_##name(o + 2, n, &c->u.name, &c->origin, errmsg);
        CMD_LIST(CMD__DEC_CASE)
#undef CMD__DEC_CASE
    case CMD__TYPE_END: break;
    }
    return errmsg_set(errmsg, LR_EVERSION, "command: unknown command code");
}

int cmd_entry_decode(const char *buf, size_t len, msgpack_unpacked *up, struct cmd_entry *e,
                     char *errmsg)
{
    size_t off = 0;
    int64_t ver;
    struct mp r;
    /* msgpack-c allocates what a header claims before it has the bytes (five bytes can ask
     * for 100 GB); the bounds-checked reader walks the entry first, so every count reaching
     * msgpack-c is backed by bytes. */
    mp_init(&r, buf, len);
    mp_skip(&r);
    if (r.err) {
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: truncated or not msgpack");
    }
    msgpack_unpack_return ur = msgpack_unpack_next(up, buf, len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: %s",
                          ur == MSGPACK_UNPACK_CONTINUE ? "truncated" : "not msgpack");
    }
    /* Raft entries are padded with up to 7 zero bytes to a multiple of 8 (cmd.h). */
    if (len - off >= CMD_ENTRY_ALIGN) {
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: %zu trailing bytes", len - off);
    }
    for (size_t i = off; i < len; i++) {
        if (buf[i] != 0) {
            return errmsg_set(errmsg, LR_EMALFORMED, "entry: non-zero padding");
        }
    }
    const msgpack_object *root = &up->data;
    if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 2 ||
        cmd__get_i64(&root->via.array.ptr[0], &ver)) {
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: not [version, [commands]]");
    }
    if (ver != CMD_ENTRY_VERSION) {
        return errmsg_set(errmsg, LR_EVERSION, "entry: unsupported version %lld", (long long)ver);
    }
    const msgpack_object *cmds = &root->via.array.ptr[1];
    if (cmds->type != MSGPACK_OBJECT_ARRAY) {
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: commands must be an array");
    }
    if (cmds->via.array.size > CMD_ENTRY_MAX) {
        return errmsg_set(errmsg, LR_ETOOBIG, "entry: %u commands (at most %d)",
                          cmds->via.array.size, CMD_ENTRY_MAX);
    }
    e->cmds = cmds->via.array.ptr;
    e->n = cmds->via.array.size;
    return 0;
}

/* ---- request hash --------------------------------------------------------------------- */

static uint64_t cmd__hash_str(uint64_t h, struct lr_str s)
{
    return hash_mix(h, hash_bytes(s.p, s.len, 0x5));
}
#define cmd__hash_ID(h, v) cmd__hash_str(h, v)
#define cmd__hash_OPTID(h, v) cmd__hash_str(h, v)
#define cmd__hash_TEXT(h, v) cmd__hash_str(h, v)
#define cmd__hash_META(h, v) cmd__hash_str(h, v)
#define cmd__hash_IDEM(h, v) (h) /* the key names the request; it is not part of it */
#define cmd__hash_I64(h, v) hash_mix(h, (uint64_t)(v))
#define cmd__hash_BOOL(h, v) hash_mix(h, (uint64_t)(v))
static uint64_t cmd__hash_prizes(uint64_t h, const struct cmd_prizes *p)
{
    h = hash_mix(h, p->n);
    for (uint32_t i = 0; i < p->n; i++) {
        h = hash_mix(h, (uint64_t)p->items[i].rank_from);
        h = hash_mix(h, (uint64_t)p->items[i].rank_to);
        h = cmd__hash_str(h, p->items[i].reward);
    }
    return h;
}
#define cmd__hash_PRIZES(h, v) cmd__hash_prizes(h, &(v))
#define CMD__HASH_FIELD(kind, fname, a, b) h = cmd__hash_##kind(h, f->fname);

uint64_t cmd_request_hash(const struct cmd *c)
{
    uint64_t h = hash_mix(0x1a0e1, (uint64_t)c->type);
    switch (c->type) {
#define CMD__HASH_CASE(code, NAME, name, flags)                                                    \
    case CMD_##NAME: {                                                                             \
        const struct cmd_##name *f = &c->u.name;                                                   \
        CMD_##NAME(CMD__HASH_FIELD) break;                                                         \
    }
        CMD_LIST(CMD__HASH_CASE)
#undef CMD__HASH_CASE
    case CMD__TYPE_END: break;
    }
    return h;
}

void cmd_idem(const struct cmd *c, struct lr_str *player, struct lr_str *key)
{
    static const struct lr_str none = {"", 0};
    *player = none;
    *key = none;
    switch (c->type) {
    case CMD_UNLOCK:
        *player = c->u.unlock.player_id;
        *key = c->u.unlock.idempotency_key;
        break;
    case CMD_SCORE:
        *player = c->u.score.player_id;
        *key = c->u.score.idempotency_key;
        break;
    case CMD_TOURNAMENT_JOIN:
        *player = c->u.tournament_join.player_id;
        *key = c->u.tournament_join.idempotency_key;
        break;
    case CMD_REWARD_CLAIM:
        *player = c->u.reward_claim.player_id;
        *key = c->u.reward_claim.idempotency_key;
        break;
    default: break;
    }
}
