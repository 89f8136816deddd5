/* meta/mcmd.c — codec of the command list in mcmd.h, generated field by field.
 *
 * The decoder trusts nothing: an entry is first walked whole by the bounds-checked reader
 * (shard/mp.h), so every length it holds is backed by bytes and every command has a known end;
 * then each command is decoded inside its own bytes, every field type-checked and bounded, and
 * its array length must match the field list exactly. A refused command costs only itself. */
#include "mcmd.h"

#include "../lib/err.h"

/* ---- names and flags ------------------------------------------------------------------ */

const char *mcmd_kind_name(int64_t kind)
{
    switch (kind) {
#define MCMD__KNAME(code, NAME, name)                                                              \
    case code: return #name;
        META_KINDS(MCMD__KNAME)
#undef MCMD__KNAME
    default: return NULL;
    }
}

const char *mcmd_name(int64_t type)
{
    switch (type) {
#define MCMD__NAME(code, NAME, name, flags)                                                        \
    case code: return #name;
        META_CMDS(MCMD__NAME)
#undef MCMD__NAME
    default: return NULL;
    }
}

unsigned mcmd_flags(int64_t type)
{
    switch (type) {
#define MCMD__FLAGS(code, NAME, name, flags)                                                       \
    case code: return flags;
        META_CMDS(MCMD__FLAGS)
#undef MCMD__FLAGS
    default: return 0;
    }
}

/* ---- encoding ------------------------------------------------------------------------- */

#define mcmd__enc_ID(pk, v) msgpack_pack_str_with_body(pk, (v).p, (v).len)
#define mcmd__enc_BIN(pk, v) msgpack_pack_bin_with_body(pk, (v).p, (v).len)
#define mcmd__enc_I64(pk, v) msgpack_pack_int64(pk, v)

#define MCMD__COUNT(kind, fname, a, b) +1
#define MCMD__ENC_FIELD(kind, fname, a, b) rv = rv || mcmd__enc_##kind(pk, f->fname);

#define MCMD__ENCODER(code, NAME, name, flags)                                                     \
    static int mcmd__encode_##name(msgpack_packer *pk, int64_t ts, const struct mcmd_##name *f)    \
    {                                                                                              \
        int rv = msgpack_pack_array(pk, 2 META_##NAME(MCMD__COUNT)) ||                             \
                 msgpack_pack_int64(pk, code) || msgpack_pack_int64(pk, ts);                       \
        META_##NAME(MCMD__ENC_FIELD) return rv ? LR_ENOMEM : 0;                                    \
    }
META_CMDS(MCMD__ENCODER)
#undef MCMD__ENCODER

int mcmd_encode(msgpack_packer *pk, const struct mcmd *c)
{
    switch (c->type) {
#define MCMD__ENC_CASE(code, NAME, name, flags)                                                    \
    case MCMD_##NAME: return mcmd__encode_##name(pk, c->ts, &c->u.name);
        META_CMDS(MCMD__ENC_CASE)
#undef MCMD__ENC_CASE
    case MCMD__TYPE_END: break;
    }
    return LR_EINVAL;
}

int mcmd_entry_begin(msgpack_packer *pk, uint32_t n)
{
    if (msgpack_pack_array(pk, 2) || msgpack_pack_int64(pk, MCMD_ENTRY_VERSION) ||
        msgpack_pack_array(pk, n)) {
        return LR_ENOMEM;
    }
    return 0;
}

int mcmd_entry_pad(msgpack_sbuffer *sb)
{
    static const char zeros[CMD_ENTRY_ALIGN];
    size_t pad = (CMD_ENTRY_ALIGN - sb->size % CMD_ENTRY_ALIGN) % CMD_ENTRY_ALIGN;
    return pad && msgpack_sbuffer_write(sb, zeros, pad) != 0 ? LR_ENOMEM : 0;
}

/* ---- decoding ------------------------------------------------------------------------- */

static int mcmd__dec_ID(struct mp *r, struct lr_str *v, int64_t a, int64_t b, const char *fname,
                        char *errmsg)
{
    (void)b;
    *v = mp_str(r);
    if (r->err || !valid_id(v->p, v->len, (size_t)a)) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be 1 to %lld characters of [A-Za-z0-9_.-]",
                          fname, (long long)a);
    }
    return 0;
}

static int mcmd__dec_BIN(struct mp *r, struct lr_str *v, int64_t a, int64_t b, const char *fname,
                         char *errmsg)
{
    (void)a;
    *v = mp_str(r);
    if (r->err || v->len > b) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be bytes of at most %lld", fname,
                          (long long)b);
    }
    return 0;
}

static int mcmd__dec_I64(struct mp *r, int64_t *v, int64_t a, int64_t b, const char *fname,
                         char *errmsg)
{
    *v = mp_i64(r);
    if (r->err || *v < a || *v > b) {
        return errmsg_set(errmsg, LR_EINVAL, "%s must be an integer in [%lld, %lld]", fname,
                          (long long)a, (long long)b);
    }
    return 0;
}

#define MCMD__DEC_FIELD(kind, fname, a, b)                                                         \
    if ((rv = mcmd__dec_##kind(r, &f->fname, a, b, #fname, errmsg)) != 0) {                        \
        return rv;                                                                                 \
    }

#define MCMD__DECODER(code, NAME, name, flags)                                                     \
    static int mcmd__decode_##name(struct mp *r, uint32_t n, struct mcmd_##name *f, char *errmsg)  \
    {                                                                                              \
        int rv;                                                                                    \
        if (n != (0 META_##NAME(MCMD__COUNT))) {                                                   \
            return errmsg_set(errmsg, LR_EMALFORMED, "%s: expected %d fields, got %u", #name,      \
                              0 META_##NAME(MCMD__COUNT), n);                                      \
        }                                                                                          \
        META_##NAME(MCMD__DEC_FIELD) return 0;                                                     \
    }
META_CMDS(MCMD__DECODER)
#undef MCMD__DECODER

int mcmd_decode(const char *buf, size_t len, struct mcmd *c, char *errmsg)
{
    struct mp r;
    int rv = LR_EVERSION;
    mp_init(&r, buf, len);
    uint32_t n = mp_array(&r);
    if (r.err || n < 2) {
        return errmsg_set(errmsg, LR_EMALFORMED, "command: not an array [code, ts, ...]");
    }
    int64_t code = mp_i64(&r);
    if (r.err || mcmd_name(code) == NULL) {
        return errmsg_set(errmsg, LR_EVERSION, "command: unknown command code");
    }
    c->ts = mp_i64(&r);
    if (r.err || c->ts < 0 || c->ts > MCMD_TS_MAX) {
        return errmsg_set(errmsg, LR_EMALFORMED, "command: ts must be a time in ms");
    }
    c->type = (enum mcmd_type)code;
    switch (c->type) {
#define MCMD__DEC_CASE(code_, NAME, name, flags)                                                   \
    case MCMD_##NAME: rv = mcmd__decode_##name(&r, n - 2, &c->u.name, errmsg); break;
        META_CMDS(MCMD__DEC_CASE)
#undef MCMD__DEC_CASE
    case MCMD__TYPE_END: break;
    }
    if (rv == 0 && !mp_done(&r)) {
        return errmsg_set(errmsg, LR_EMALFORMED, "command: trailing bytes");
    }
    return rv == LR_EVERSION ? errmsg_set(errmsg, rv, "command: unknown command code") : rv;
}

int mcmd_entry_decode(const char *buf, size_t len, struct mcmd_entry *e, char *errmsg)
{
    struct mp whole;
    mp_init(&whole, buf, len);
    mp_skip(&whole);
    if (whole.err) {
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: truncated or not msgpack");
    }
    size_t rest = (size_t)(whole.end - whole.p);
    if (rest >= CMD_ENTRY_ALIGN) {
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: %zu trailing bytes", rest);
    }
    for (size_t i = 0; i < rest; i++) {
        if (whole.p[i] != 0) {
            return errmsg_set(errmsg, LR_EMALFORMED, "entry: non-zero padding");
        }
    }
    mp_init(&e->r, buf, len - rest);
    uint32_t n = mp_array(&e->r);
    int64_t ver = mp_i64(&e->r);
    if (e->r.err || n != 2) {
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: not [version, [commands]]");
    }
    if (ver != MCMD_ENTRY_VERSION) {
        return errmsg_set(errmsg, LR_EVERSION, "entry: unsupported version %lld", (long long)ver);
    }
    e->n = mp_array(&e->r);
    if (e->r.err) {
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: commands must be an array");
    }
    if (e->n > MCMD_ENTRY_MAX) {
        return errmsg_set(errmsg, LR_ETOOBIG, "entry: %u commands (at most %d)", e->n,
                          MCMD_ENTRY_MAX);
    }
    e->next = 0;
    return 0;
}

int mcmd_next(struct mcmd_entry *e, struct mcmd *c, char *errmsg)
{
    const unsigned char *start = e->r.p;
    e->next++;
    mp_skip(&e->r);
    if (e->r.err) { /* cannot happen after mcmd_entry_decode's walk; refuse, never assert */
        return errmsg_set(errmsg, LR_EMALFORMED, "entry: truncated command");
    }
    return mcmd_decode((const char *)start, (size_t)(e->r.p - start), c, errmsg);
}
