/* proto/peerauth.c — the cluster key and the handshake's state machine (see peerauth.h).
 *
 * Invariants: `need` is the size of the message this side waits for (0 once done or failed)
 * and `got` <= `need`; a message is checked only when complete, and a failed check moves to
 * PEERAUTH_FAILED for good, so no path leads from a bad byte to PEERAUTH_DONE. */
#include "peerauth.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "../lib/err.h"

/* Same length, differing by direction: an HMAC made for one direction never checks out in the
 * other, which is what defeats reflection. */
static const char peerauth__label_r[] = "laurel peerauth v1 R";
static const char peerauth__label_i[] = "laurel peerauth v1 I";

int peerauth_key_set(struct peerauth_key *k, const char *text, size_t len, char *errmsg)
{
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                       text[len - 1] == '\t')) {
        len--;
    }
    if (len < PEERAUTH_KEY_MIN || len > PEERAUTH_KEY_MAX) {
        return errmsg_set(errmsg, LR_EINVAL,
                          "cluster key: %zu bytes; it must have %d to %d (32 random hex digits "
                          "will do)",
                          len, PEERAUTH_KEY_MIN, PEERAUTH_KEY_MAX);
    }
    memcpy(k->bytes, text, len);
    k->len = len;
    return 0;
}

int peerauth_key_load(struct peerauth_key *k, const char *path, char *errmsg)
{
    char buf[4096];
    size_t n;
    int rv;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return errmsg_set(errmsg, LR_EIO, "cluster key file %s: %s", path, strerror(errno));
    }
    n = fread(buf, 1, sizeof buf - 1, f);
    rv = ferror(f) ? errno : 0;
    fclose(f);
    if (rv != 0) {
        return errmsg_set(errmsg, LR_EIO, "cluster key file %s: %s", path, strerror(rv));
    }
    buf[n] = '\0';
    size_t skip = strspn(buf, " \t\r\n");
    if (buf[skip] != '{') {
        const char *nl = strchr(buf + skip, '\n');
        size_t len = nl ? (size_t)(nl - (buf + skip)) : n - skip;
        if ((rv = peerauth_key_set(k, buf + skip, len, errmsg)) != 0) {
            char inner[LR_ERRMSG_SIZE];
            memcpy(inner, errmsg, sizeof inner);
            return errmsg_set(errmsg, rv, "%s: %s", path, inner);
        }
        return 0;
    }
    json_error_t jerr;
    json_t *root = json_loadb(buf, n, 0, &jerr);
    const char *key = json_string_value(json_object_get(root, "cluster_key"));
    if (key == NULL) {
        json_decref(root);
        return errmsg_set(errmsg, LR_EMALFORMED,
                          "cluster key file %s: a JSON file needs a string member \"cluster_key\"",
                          path);
    }
    rv = peerauth_key_set(k, key, strlen(key), errmsg);
    json_decref(root);
    if (rv != 0) {
        char inner[LR_ERRMSG_SIZE];
        memcpy(inner, errmsg, sizeof inner);
        return errmsg_set(errmsg, rv, "%s: %s", path, inner);
    }
    return 0;
}

int peerauth_key_config(struct peerauth_key *k, int *have, const char *path, const char *env,
                        char *errmsg)
{
    int rv;
    *have = 0;
    if (path != NULL) {
        rv = peerauth_key_load(k, path, errmsg);
    } else if (env != NULL && env[0] != '\0') {
        rv = peerauth_key_set(k, env, strlen(env), errmsg);
    } else {
        return 0;
    }
    if (rv == 0) {
        *have = 1;
    }
    return rv;
}

/* HMAC-SHA256(key, label || nonce_i || nonce_r) into @mac. */
static void peerauth__mac(const struct peerauth *pa, const char *label, uint8_t *mac)
{
    uint8_t msg[sizeof peerauth__label_r - 1 + 2 * PEERAUTH_NONCE];
    size_t l = strlen(label);
    unsigned int len = PEERAUTH_MAC;
    memcpy(msg, label, l);
    memcpy(msg + l, pa->nonce_i, PEERAUTH_NONCE);
    memcpy(msg + l + PEERAUTH_NONCE, pa->nonce_r, PEERAUTH_NONCE);
    /* HMAC with SHA-256 and in-memory buffers cannot fail short of memory corruption. */
    if (HMAC(EVP_sha256(), pa->key->bytes, (int)pa->key->len, msg, l + 2 * PEERAUTH_NONCE, mac,
             &len) == NULL) {
        memset(mac, 0, PEERAUTH_MAC); /* matches no honest peer's answer */
    }
}

static int peerauth__random(uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = getrandom(p, n, 0);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return LR_EIO;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int peerauth__fail(struct peerauth *pa, int rv, const char *why)
{
    pa->state = PEERAUTH_FAILED;
    pa->need = pa->got = 0;
    pa->out_len = 0;
    pa->why = why;
    return rv;
}

int peerauth_init(struct peerauth *pa, const struct peerauth_key *key, int initiator)
{
    memset(pa, 0, sizeof *pa);
    pa->key = key;
    pa->why = "";
    if (initiator) {
        if (peerauth__random(pa->nonce_i, PEERAUTH_NONCE) != 0) {
            return LR_EIO;
        }
        memcpy(pa->out, PEERAUTH_MAGIC, PEERAUTH_MAGIC_LEN);
        memcpy(pa->out + PEERAUTH_MAGIC_LEN, pa->nonce_i, PEERAUTH_NONCE);
        pa->out_len = PEERAUTH_M1;
        pa->state = PEERAUTH_WAIT_M2;
        pa->need = PEERAUTH_M2;
    } else {
        if (peerauth__random(pa->nonce_r, PEERAUTH_NONCE) != 0) {
            return LR_EIO;
        }
        pa->state = PEERAUTH_WAIT_M1;
        pa->need = PEERAUTH_M1;
    }
    return 0;
}

uint8_t *peerauth_want(struct peerauth *pa, size_t *n)
{
    if (pa->state == PEERAUTH_DONE || pa->state == PEERAUTH_FAILED) {
        *n = 0;
        return NULL;
    }
    *n = pa->need - pa->got;
    return pa->in + pa->got;
}

int peerauth_got(struct peerauth *pa, size_t n)
{
    uint8_t mac[PEERAUTH_MAC];
    if (pa->state == PEERAUTH_DONE || pa->state == PEERAUTH_FAILED || n > pa->need - pa->got) {
        return peerauth__fail(pa, LR_EUNAUTHORIZED, "bytes past the end of the handshake");
    }
    pa->got += n;
    /* The magic is checked as soon as it is in, so a peer speaking the old protocol (with
     * fewer bytes than a whole message) is told apart at once rather than at the deadline. */
    if ((pa->state == PEERAUTH_WAIT_M1 || pa->state == PEERAUTH_WAIT_M2) &&
        memcmp(pa->in, PEERAUTH_MAGIC,
               pa->got < PEERAUTH_MAGIC_LEN ? pa->got : PEERAUTH_MAGIC_LEN) != 0) {
        return peerauth__fail(pa, LR_EVERSION,
                              "the peer did not open the cluster-key handshake: it runs without "
                              "a cluster key (pass the same --cluster-key-file to every process) "
                              "or is not laurel");
    }
    if (pa->got < pa->need) {
        return 0;
    }
    pa->out_len = 0;
    switch (pa->state) {
    case PEERAUTH_WAIT_M1:
        memcpy(pa->nonce_i, pa->in + PEERAUTH_MAGIC_LEN, PEERAUTH_NONCE);
        memcpy(pa->out, PEERAUTH_MAGIC, PEERAUTH_MAGIC_LEN);
        memcpy(pa->out + PEERAUTH_MAGIC_LEN, pa->nonce_r, PEERAUTH_NONCE);
        peerauth__mac(pa, peerauth__label_r, pa->out + PEERAUTH_MAGIC_LEN + PEERAUTH_NONCE);
        pa->out_len = PEERAUTH_M2;
        pa->state = PEERAUTH_WAIT_M3;
        pa->need = PEERAUTH_M3;
        pa->got = 0;
        return 0;
    case PEERAUTH_WAIT_M2:
        memcpy(pa->nonce_r, pa->in + PEERAUTH_MAGIC_LEN, PEERAUTH_NONCE);
        peerauth__mac(pa, peerauth__label_r, mac);
        if (CRYPTO_memcmp(mac, pa->in + PEERAUTH_MAGIC_LEN + PEERAUTH_NONCE, PEERAUTH_MAC) != 0) {
            return peerauth__fail(pa, LR_EUNAUTHORIZED,
                                  "the peer's answer does not match our cluster key (a different "
                                  "--cluster-key-file?)");
        }
        peerauth__mac(pa, peerauth__label_i, pa->out);
        pa->out_len = PEERAUTH_M3;
        pa->state = PEERAUTH_DONE;
        pa->need = pa->got = 0;
        return 0;
    case PEERAUTH_WAIT_M3:
        peerauth__mac(pa, peerauth__label_i, mac);
        if (CRYPTO_memcmp(mac, pa->in, PEERAUTH_MAC) != 0) {
            return peerauth__fail(pa, LR_EUNAUTHORIZED,
                                  "the peer's answer does not match our cluster key (a different "
                                  "--cluster-key-file?)");
        }
        pa->state = PEERAUTH_DONE;
        pa->need = pa->got = 0;
        return 0;
    case PEERAUTH_DONE:
    case PEERAUTH_FAILED: break;
    }
    return peerauth__fail(pa, LR_EUNAUTHORIZED, "bytes past the end of the handshake");
}

const uint8_t *peerauth_out(struct peerauth *pa, size_t *n)
{
    *n = pa->out_len;
    pa->out_len = 0;
    return pa->out;
}

int peerauth_done(const struct peerauth *pa)
{
    return pa->state == PEERAUTH_DONE;
}

const char *peerauth_why(const struct peerauth *pa)
{
    return pa->why;
}

int peerauth_is_magic(const uint8_t *p, size_t n)
{
    return n >= PEERAUTH_MAGIC_LEN && memcmp(p, PEERAUTH_MAGIC, PEERAUTH_MAGIC_LEN) == 0;
}
