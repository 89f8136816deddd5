/* fuzz/fuzz_rpc.c — the replica RPC from the wire up: the frame reader (proto/proto.c), the
 * envelope, and the query decoders of both kinds of group (proto_query_decode for a region,
 * meta_query_decode for the metadata group).
 *
 * The first byte picks the chunk size the stream is fed in (a peer's bytes arrive in any
 * split), the rest is the stream. Every frame is unpacked, its envelope read, and its body
 * offered to both query decoders, as node/conn.c would for a query op. */
#include <msgpack.h>

#include "fuzz/fuzz.h"
#include "lib/err.h"
#include "meta/meta.h"
#include "proto/proto.h"
#include "shard/shard.h"

static void fuzz_rpc_frame(const char *p, size_t n)
{
    char errmsg[LR_ERRMSG_SIZE];
    msgpack_unpacked up;
    struct proto_msg m;
    msgpack_unpacked_init(&up);
    if (proto_unpack(p, n, &up) == 0 && proto_msg_decode(&up.data, &m) == 0 && m.body) {
        struct shard_query q;
        struct meta_query mq;
        int stale;
        (void)proto_query_decode(m.body, &q, &stale, errmsg);
        (void)meta_query_decode(m.body, &mq, &stale, errmsg);
        (void)proto_op_name(m.op_or_code);
        (void)proto_op_flags(m.op_or_code);
    }
    msgpack_unpacked_destroy(&up);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    size_t chunk = (size_t)data[0] % 64 + 1;
    struct proto_reader r;
    proto_reader_init(&r);
    for (size_t off = 1; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        char *c = fuzz_copy(data + off, n);
        int rv = proto_reader_feed(&r, c, n);
        free(c);
        off += n;
        if (rv != 0) {
            break;
        }
        const char *p;
        size_t len;
        while ((rv = proto_reader_next(&r, &p, &len)) == 1) {
            fuzz_rpc_frame(p, len);
        }
        if (rv < 0) {
            break; /* LR_ETOOBIG: the connection would be closed */
        }
    }
    proto_reader_free(&r);
    return 0;
}
