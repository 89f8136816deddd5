/* proto/peerauth.h — the cluster key and the mutual challenge-response that opens every raft
 * and every replica RPC connection (docs/security.md, "Peer authentication").
 *
 * Both sides prove they hold the cluster key without sending it. The side that connected (the
 * initiator, I) and the side that accepted (the responder, R) each contribute a fresh random
 * 32-byte nonce; each answers with HMAC-SHA256(key, label || nonce_I || nonce_R), where the
 * label differs by direction, so an answer one side computed can never be replayed or
 * reflected back as the other side's answer. Three messages:
 *
 *   M1  I -> R   "LRAUTH01" nonce_I                       40 bytes
 *   M2  R -> I   "LRAUTH01" nonce_R HMAC(key, "laurel peerauth v1 R" nonce_I nonce_R)   72
 *   M3  I -> R   HMAC(key, "laurel peerauth v1 I" nonce_I nonce_R)                      32
 *
 * The responder proves itself first; the initiator proves itself in M3, and the responder
 * passes nothing of the connection on (to libraft or to the RPC decoder) before M3 checks out.
 * The magic lets either side tell "the peer has no cluster key" (it speaks the old protocol)
 * from "the peer has a different key". MACs are compared in constant time (CRYPTO_memcmp).
 *
 * This authenticates the two ends at the start of the connection only: the bytes after it are
 * neither encrypted nor authenticated (docs/security.md says what that leaves open).
 *
 * The state machine below is pure: it never touches a socket. The caller reads exactly the
 * bytes peerauth_want asks for, hands them over with peerauth_got, and sends whatever
 * peerauth_out holds after each call. proto/authio.h runs it on a libuv stream. */
#ifndef LAUREL_PEERAUTH_H
#define LAUREL_PEERAUTH_H

#include <stddef.h>
#include <stdint.h>

#define PEERAUTH_KEY_MIN 16  /* bytes: shorter keys are refused */
#define PEERAUTH_KEY_MAX 256 /* bytes */
#define PEERAUTH_NONCE 32
#define PEERAUTH_MAC 32
#define PEERAUTH_MAGIC "LRAUTH01"
#define PEERAUTH_MAGIC_LEN 8
#define PEERAUTH_M1 (PEERAUTH_MAGIC_LEN + PEERAUTH_NONCE)
#define PEERAUTH_M2 (PEERAUTH_MAGIC_LEN + PEERAUTH_NONCE + PEERAUTH_MAC)
#define PEERAUTH_M3 PEERAUTH_MAC
/* The environment variable holding the key when no key file is given. */
#define PEERAUTH_ENV "LAUREL_CLUSTER_KEY"

/* A cluster key: the bytes of its text form (hex or anything printable), as given. */
struct peerauth_key {
    size_t len;
    uint8_t bytes[PEERAUTH_KEY_MAX];
};

/**
 * Set @k from @len bytes of text at @text (copied); trailing whitespace and newlines are
 * dropped first. @return 0; LR_EINVAL (errmsg says why) when what is left is shorter than
 * PEERAUTH_KEY_MIN or longer than PEERAUTH_KEY_MAX bytes.
 */
int peerauth_key_set(struct peerauth_key *k, const char *text, size_t len, char *errmsg);

/**
 * Load @k from the file at @path (borrowed for the call): either the key itself on one line,
 * or a JSON object whose member "cluster_key" is the key (so `laurel dev`'s keys.json serves).
 * @return 0; LR_EIO (unreadable), LR_EMALFORMED (JSON without a string "cluster_key"),
 * LR_EINVAL (key length), with errmsg naming @path.
 */
int peerauth_key_load(struct peerauth_key *k, const char *path, char *errmsg);

/**
 * The cluster key of a process: from the file @path when it is not NULL, else from @env (the
 * value of PEERAUTH_ENV, or NULL). @return 0 with *@have 1 (a key is in @k) or 0 (neither was
 * given); or an error of peerauth_key_load / peerauth_key_set.
 */
int peerauth_key_config(struct peerauth_key *k, int *have, const char *path, const char *env,
                        char *errmsg);

enum peerauth_state {
    PEERAUTH_WAIT_M1, /* responder */
    PEERAUTH_WAIT_M2, /* initiator */
    PEERAUTH_WAIT_M3, /* responder */
    PEERAUTH_DONE,
    PEERAUTH_FAILED,
};

/* One side of one handshake. Fields are private; read them through the functions below. */
struct peerauth {
    const struct peerauth_key *key; /* borrowed until the handshake ends */
    enum peerauth_state state;
    uint8_t nonce_i[PEERAUTH_NONCE], nonce_r[PEERAUTH_NONCE];
    uint8_t in[PEERAUTH_M2];
    size_t need, got;
    uint8_t out[PEERAUTH_M2];
    size_t out_len;
    const char *why; /* static text, set when state is PEERAUTH_FAILED */
};

/**
 * Start a handshake as the initiator (@initiator 1: peerauth_out then holds M1) or the
 * responder (0). @key is borrowed until the handshake ends. Nonces come from getrandom.
 * @return 0, or LR_EIO when the kernel has no randomness to give.
 */
int peerauth_init(struct peerauth *pa, const struct peerauth_key *key, int initiator);

/** Where the next bytes read from the peer go, and in *@n how many are still wanted (never
 * more: reading more would swallow bytes of the protocol after the handshake). NULL with *@n 0
 * when the handshake is over. */
uint8_t *peerauth_want(struct peerauth *pa, size_t *n);

/**
 * @n bytes (at most what peerauth_want gave) were written where it pointed. When a message is
 * complete it is checked and the answer, if any, is put in peerauth_out.
 * @return 0 (read on, or done: see peerauth_done); LR_EUNAUTHORIZED (wrong key, or a reflected
 * or garbled answer) or LR_EVERSION (the peer does not speak this handshake: it has no cluster
 * key, or is not laurel); peerauth_why says which in a sentence.
 */
int peerauth_got(struct peerauth *pa, size_t n);

/** The bytes to send now (valid until the next peerauth_got), in *@n; *@n is 0 when none. Each
 * call hands them over once. */
const uint8_t *peerauth_out(struct peerauth *pa, size_t *n);

/** 1 once this side has checked the peer's proof and has nothing left to read. */
int peerauth_done(const struct peerauth *pa);

/** Why the handshake failed, a static sentence; "" when it did not. */
const char *peerauth_why(const struct peerauth *pa);

/** 1 when the @n bytes at @p begin like M1 (for a process without a key, to log that a peer
 * has one). */
int peerauth_is_magic(const uint8_t *p, size_t n);

#endif
