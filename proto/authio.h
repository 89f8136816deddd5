/* proto/authio.h — runs the peer handshake (peerauth.h) on a libuv stream, for the four
 * places that speak it asynchronously: the raft transport (raft/xport.c, both sides), the
 * replica's RPC server (node/conn.c), and the RPC clients on a loop (router/upstream.c,
 * router/evstream.c, node/node_peerclock.c).
 *
 * The caller keeps its own read callbacks and routes to authio while authio_done is 0: its
 * alloc callback calls authio_alloc, its read callback authio_read. Reads are sized to the
 * bytes still missing, so nothing after the handshake is swallowed. Each message is written
 * from its own heap copy, freed by its write callback, so the caller may free the struct
 * authio (and close the stream) at any time. Deadlines and bounds on concurrent handshakes
 * are the caller's: they differ between a listener and a dialer.
 *
 * Without a key (key NULL) authio_start does nothing and authio_done is 1 at once: the
 * unauthenticated loopback mode (docs/security.md). */
#ifndef LAUREL_AUTHIO_H
#define LAUREL_AUTHIO_H

#include <uv.h>

#include "peerauth.h"

struct authio {
    struct peerauth pa;
    int on; /* a key was given */
};

/**
 * Start the handshake on @s (connected, or just accepted) as the initiator or the responder;
 * the initiator's M1 is written at once. @key is borrowed until the handshake ends; NULL:
 * no handshake. @return 0, or LR_EIO / LR_ENOMEM (the stream should be closed).
 */
int authio_start(struct authio *a, uv_stream_t *s, const struct peerauth_key *key, int initiator);

/** 1 when the handshake succeeded (or there is none): the stream is the caller's again. */
int authio_done(const struct authio *a);

/** For the caller's alloc callback while authio_done is 0. */
void authio_alloc(struct authio *a, uv_buf_t *buf);

/**
 * For the caller's read callback while authio_done is 0, with @nread > 0 bytes that landed in
 * the buffer authio_alloc gave. Writes this side's answer on @s.
 * @return 0 (check authio_done); or an error of peerauth_got, LR_EIO or LR_ENOMEM (write
 * failed): authio_why says why; close the stream.
 */
int authio_read(struct authio *a, uv_stream_t *s, ssize_t nread);

/** Why authio_read failed, a sentence. */
const char *authio_why(const struct authio *a);

#endif
