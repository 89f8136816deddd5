/* fuzz/fuzz_peerauth.c — the challenge-response of the peer handshake (proto/peerauth.c) as
 * proto/authio.c runs it on a stream: this side's authio reads the peer's messages in pieces
 * sized by the input, and writes its own on one end of a socketpair (read back and dropped).
 *
 * Input: byte 0's bit 0 says whether this side is the initiator; bit 1 gives the peer a
 * different key; bit 2 makes the peer raw: the rest of the input is what it sends, read in
 * pieces of 1 + byte 1 % 80 bytes. Otherwise the peer is an honest peerauth of the other role,
 * and the rest of the input is pairs (piece size - 1, a byte XORed into the piece's first
 * byte) for what reaches this side; once the pairs run out the rest comes whole.
 *
 * Checks, besides ASan and UBSan: this side finishes only when the peer holds the same key
 * and not one byte it read was changed (a forgery would be a hole, not a crash); an honest
 * peer with the same key and no change always gets through; the want/got bookkeeping never
 * asks for more than one message. */
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "fuzz/fuzz.h"
#include "proto/authio.h"

#define FUZZ_PEERAUTH_KEY "fuzz-cluster-key-0123456789abcdef"
#define FUZZ_PEERAUTH_OTHER "fuzz-cluster-key-0123456789abcdeX"

/* The process's stream: a pipe handle on one end of a socketpair, the other end drained. */
struct fuzz_peerauth__proc {
    uv_loop_t loop;
    uv_pipe_t pipe;
    int far;
    struct peerauth_key key, other;
};

static struct fuzz_peerauth__proc *fuzz_peerauth__proc(void)
{
    static struct fuzz_peerauth__proc *p;
    int sv[2];
    char errmsg[256];
    if (p != NULL) {
        return p;
    }
    if ((p = calloc(1, sizeof *p)) == NULL || uv_loop_init(&p->loop) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0 ||
        uv_pipe_init(&p->loop, &p->pipe, 0) != 0 || uv_pipe_open(&p->pipe, sv[0]) != 0 ||
        peerauth_key_set(&p->key, FUZZ_PEERAUTH_KEY, strlen(FUZZ_PEERAUTH_KEY), errmsg) != 0 ||
        peerauth_key_set(&p->other, FUZZ_PEERAUTH_OTHER, strlen(FUZZ_PEERAUTH_OTHER), errmsg) !=
            0) {
        abort();
    }
    p->far = sv[1];
    return p;
}

/* Run the writes' callbacks and drop what reached the far end. */
static void fuzz_peerauth__drain(struct fuzz_peerauth__proc *p)
{
    char buf[4096];
    uv_run(&p->loop, UV_RUN_NOWAIT);
    while (read(p->far, buf, sizeof buf) > 0) {
    }
}

/* What this side wrote reaches @peer: read from the far end, in the pieces it wants. */
static void fuzz_peerauth__to_peer(struct fuzz_peerauth__proc *p, struct peerauth *peer)
{
    uint8_t buf[4 * PEERAUTH_M2];
    ssize_t n;
    uv_run(&p->loop, UV_RUN_NOWAIT);
    while ((n = read(p->far, buf, sizeof buf)) > 0) {
        for (size_t off = 0; off < (size_t)n;) {
            size_t want;
            uint8_t *dst = peerauth_want(peer, &want);
            if (dst == NULL) {
                break; /* the peer is done or failed: the rest is dropped */
            }
            size_t take = (size_t)n - off < want ? (size_t)n - off : want;
            memcpy(dst, buf + off, take);
            off += take;
            if (peerauth_got(peer, take) != 0) {
                break;
            }
        }
    }
}

/* Hand @n bytes at @src to @a as a read of that size would: 0 or authio_read's error. */
static int fuzz_peerauth__feed(struct authio *a, uv_stream_t *s, const uint8_t *src, size_t n)
{
    uv_buf_t buf;
    authio_alloc(a, &buf);
    if (buf.len == 0 || n > buf.len || n > PEERAUTH_M2) {
        abort(); /* the caller asks only while the handshake runs, and for no more than wanted */
    }
    memcpy(buf.base, src, n);
    return authio_read(a, s, (ssize_t)n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    struct fuzz_peerauth__proc *p = fuzz_peerauth__proc();
    uv_stream_t *s = (uv_stream_t *)&p->pipe;
    int initiator = data[0] & 1, other = data[0] & 2, raw = data[0] & 4, changed = 0, rv = 0;
    struct authio a;
    struct peerauth peer;
    if (authio_start(&a, s, &p->key, initiator) != 0 ||
        peerauth_init(&peer, other ? &p->other : &p->key, !initiator) != 0) {
        abort();
    }
    const uint8_t *in = data + 1;
    size_t left = size - 1;
    /* What the peer has sent and this side has not read yet. */
    uint8_t wire[PEERAUTH_M2];
    size_t wire_len = 0, wire_at = 0;
    while (rv == 0 && !authio_done(&a)) {
        size_t want;
        peerauth_want(&a.pa, &want);
        if (raw) {
            size_t n = 1 + data[1] % 80;
            n = n < want ? n : want;
            if (left <= 1 || n > left - 1) {
                break;
            }
            rv = fuzz_peerauth__feed(&a, s, in + 1, n);
            changed = 1;
            in += n, left -= n;
            continue;
        }
        /* The honest peer: first what this side wrote to it, then its answer. */
        fuzz_peerauth__to_peer(p, &peer);
        if (wire_at == wire_len) {
            const uint8_t *po = peerauth_out(&peer, &wire_len);
            memcpy(wire, po, wire_len);
            wire_at = 0;
            if (wire_len == 0) {
                break; /* the peer has nothing more to say: this side waits for its deadline */
            }
        }
        size_t piece = wire_len - wire_at;
        uint8_t chunk[PEERAUTH_M2];
        uint8_t flip = 0;
        if (left >= 2) {
            piece = 1 + in[0] % 80;
            flip = in[1];
            in += 2, left -= 2;
        }
        piece = piece < wire_len - wire_at ? piece : wire_len - wire_at;
        piece = piece < want ? piece : want;
        memcpy(chunk, wire + wire_at, piece);
        chunk[0] ^= flip;
        changed |= flip != 0;
        wire_at += piece;
        rv = fuzz_peerauth__feed(&a, s, chunk, piece);
    }
    if (authio_done(&a) && (changed || other)) {
        fprintf(stderr, "fuzz_peerauth: the handshake succeeded with %s\n",
                other ? "a different key" : "changed bytes");
        abort();
    }
    if (!raw) {
        fuzz_peerauth__to_peer(p, &peer); /* M3, when this side is the initiator */
    }
    if (!raw && !changed && !other && (!authio_done(&a) || !peerauth_done(&peer))) {
        fprintf(stderr, "fuzz_peerauth: an honest handshake failed: %s / %s\n", authio_why(&a),
                peerauth_why(&peer));
        abort();
    }
    if (rv != 0 && authio_why(&a)[0] == '\0') {
        abort(); /* every refusal says why */
    }
    fuzz_peerauth__drain(p);
    return 0;
}
