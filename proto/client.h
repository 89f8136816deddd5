/* proto/client.h — a blocking client of the replica RPC, for `laurel ctl`, tests and benches.
 * One connection, requests may be pipelined (client_send ... client_recv). Not for the
 * router's hot path, which talks to replicas from its own loop. */
#ifndef LAUREL_CLIENT_H
#define LAUREL_CLIENT_H

#include <msgpack.h>
#include <stdint.h>

#include "peerauth.h"
#include "proto.h"

struct client {
    int fd;
    struct proto_reader rd;
    uint64_t next_id;
    msgpack_unpacked up; /* the last reply */
    char addr[64];
    char errmsg[LR_ERRMSG_SIZE];
};

struct client_reply {
    uint64_t id;
    int code;                   /* 0 or LR_E* */
    const msgpack_object *body; /* valid until the next recv on this client */
};

/** Connect to @addr (host:port, [v6]:port or name:port; lib/addr.h) within @timeout_ms. @return 0
 * or LR_E* with errmsg. */
int client_connect(struct client *c, const char *addr, int timeout_ms);

/**
 * Run the initiator's side of the cluster-key handshake (peerauth.h) on a connection that
 * client_connect just opened, within @timeout_ms. @key is borrowed for the call. Call it
 * before any request when the replica has a key; a replica with a key closes a connection
 * that sends anything else first.
 * @return 0; LR_EUNAUTHORIZED (the replica has another key or none, or closed the connection:
 * errmsg says so and names --cluster-key-file), LR_EUNAVAILABLE (timeout), LR_EIO.
 */
int client_auth(struct client *c, const struct peerauth_key *key, int timeout_ms);

/** Close (idempotent). */
void client_close(struct client *c);

/**
 * Send request @op with @args (a packed msgpack value, or NULL for nil) and return its id in
 * *@id. @return 0 or LR_EIO.
 */
int client_send(struct client *c, int op, const char *args, size_t len, uint64_t *id);

/** Wait up to @timeout_ms for the next reply. @return 0, LR_EUNAVAILABLE (timeout) or LR_EIO. */
int client_recv(struct client *c, struct client_reply *r, int timeout_ms);

/** client_send then client_recv until the reply with that id. */
int client_call(struct client *c, int op, const char *args, size_t len, struct client_reply *r,
                int timeout_ms);

/** A loopback TCP port the kernel reports free right now (for tests and benches that start
 * replicas; another process may take it before they bind). @return the port or -1. */
int client_free_port(void);

/** Send @n raw bytes (for tests that feed garbage). */
int client_send_raw(struct client *c, const void *p, size_t n);

#endif
