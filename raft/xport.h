/* raft/xport.h — the TCP transport between the replicas of a region, IPv4 and IPv6.
 *
 * libraft 0.15's own TCP transport (raft_uv_tcp) cuts an address at its first colon and
 * resolves it as IPv4 only, so "[::1]:7001" cannot be a raft address; and it never sets
 * TCP_NODELAY, so entries of a few KB wait on Nagle's algorithm (measured: 21 K commands/s
 * with p99 49 ms, against 346 K/s and 2.8 ms with it set; ../shared/NOTES-deps.md). This
 * transport implements libraft's struct raft_uv_transport on libuv instead:
 *
 * - Addresses are anything lib/addr.h parses: "10.0.0.1:7001", "[::1]:7001", "name:7001".
 *   It listens on the address raft gives at init; it connects to a peer's address resolved
 *   on libuv's thread pool, so a slow name server never stalls the loop (and heartbeats).
 * - Every stream, accepted or connected, has TCP_NODELAY set before raft sees it.
 * - A connection opens with raft_uv_tcp's handshake (handshake.h: protocol, server id,
 *   address), so replicas running either transport talk to each other. The listening side
 *   reads it under bounds before raft hears of the connection: an address field of at most
 *   HANDSHAKE_ADDRESS_MAX bytes, a deadline (XPORT_HANDSHAKE_TIMEOUT_MS by default) so a
 *   silent peer cannot hold a half-open connection, at most XPORT_HANDSHAKES_MAX handshakes
 *   at once, and any byte out of place closes that connection (logged) and nothing else.
 * - With a cluster key (xport_set_key), both sides run the mutual challenge-response of
 *   proto/peerauth.h before the preamble, under the same deadline and bound; a failure closes
 *   the connection, is counted (xport_auth_failures) and logged at most once a second.
 *
 * Everything runs on the loop thread of @loop; nothing is thread-safe. The functions that
 * libraft calls through the struct keep libraft's contracts (raft/uv.h): they return RAFT_*
 * codes, which is libraft's error space at this boundary. */
#ifndef LAUREL_XPORT_H
#define LAUREL_XPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "../lib/log.h"
#include "../proto/peerauth.h"

/* How long an accepted connection may take to send its handshake. A replica sends it as soon
 * as TCP connects, so seconds mean a stalled or hostile peer. */
#define XPORT_HANDSHAKE_TIMEOUT_MS 3000

/* Accepted connections still reading their handshake, at most. A region has a handful of
 * replicas, each with one connection to us; past this, new connections are closed at once
 * rather than letting a flood of silent connections use up the process's descriptors. */
#define XPORT_HANDSHAKES_MAX 64

/**
 * Initialise @t as a TCP transport on @loop, logging refused connections to @log.
 * @t is caller-allocated and must stay valid until xport_close; its data field is kept (it is
 * libraft's). @log is borrowed until xport_close. Hand @t to raft_uv_init.
 *
 * Contracts that libraft relies on (raft/uv.h), kept here:
 * - connect's callback fires exactly once, never from inside connect; when connect returns
 *   an error it never fires. On success the stream is libraft's (uv_close, then raft_free).
 * - An accepted stream is handed to the accept callback only after a valid handshake, and is
 *   libraft's from then on; no other accepted connection is ever reported.
 * - close stops accepting, completes every pending connect with RAFT_CANCELED, closes the
 *   connections still in their handshake, and calls its callback once every handle of the
 *   transport is closed (never from inside close).
 *
 * @return 0, or LR_ENOMEM.
 */
int xport_init(struct raft_uv_transport *t, uv_loop_t *loop, struct logger *log);

/** Set the handshake deadline of accepted connections (tests use a short one). Call before
 * raft starts listening; @ms >= 1. */
void xport_set_handshake_timeout(struct raft_uv_transport *t, unsigned ms);

/** Require the cluster-key handshake (proto/peerauth.h) on every connection, both ways, with
 * @key (borrowed until xport_close). Call before raft starts; without it, none is done. */
void xport_set_key(struct raft_uv_transport *t, const struct peerauth_key *key);

/** Connections refused or failed in the cluster-key handshake (wrong key, no key, no answer
 * in time), both ways, since xport_init. */
uint64_t xport_auth_failures(const struct raft_uv_transport *t);

/**
 * Release what xport_init allocated. Call it before the transport's init ran (raft_init
 * failed early) or after its close callback fired; never in between, when its handles are
 * still in the loop.
 */
void xport_close(struct raft_uv_transport *t);

#endif
